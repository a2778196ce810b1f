"""SafeEraser metrics (eval_all.py): `evaluate(...)` for code, `command.main` for the command line."""

from safeeraser.eval.evaluate import default_cache_path, evaluate, stats_path_for
from safeeraser.eval.judges import ChatSettings, Judge, JudgeConfigError, make_judge

__all__ = [
    "ChatSettings",
    "Judge",
    "JudgeConfigError",
    "default_cache_path",
    "evaluate",
    "make_judge",
    "stats_path_for",
]
