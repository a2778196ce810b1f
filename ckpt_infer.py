"""Inference entry point: `python ckpt_infer.py --eval_file ... --model_path ... --output_file ...`."""
from safeeraser.infer.ckpt_infer import main

if __name__ == "__main__":
    raise SystemExit(main())
