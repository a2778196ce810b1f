"""Unlearning entry point: `accelerate launch forget.py --config-name forget_lora.yaml forget_loss=gdpd ...`."""
import sys

from safeeraser.cli import main


def _deepspeed_missing() -> str | None:
    """A launch that asks for DeepSpeed on an install without the `train` extra: one line, not accelerate's
    ImportError traceback from inside the training loop."""
    from safeeraser.train.config import ConfigError
    from safeeraser.train.deepspeed_check import check_environment

    try:
        check_environment()
    except ConfigError as exc:
        return str(exc)
    return None


if __name__ == "__main__":
    problem = _deepspeed_missing()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(["forget", *sys.argv[1:]]))
