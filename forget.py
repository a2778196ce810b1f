"""Unlearning entry point: `accelerate launch forget.py --config-name forget_lora.yaml forget_loss=gdpd ...`."""
from safeeraser.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["forget", *__import__("sys").argv[1:]]))
