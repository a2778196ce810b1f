"""Progress bars that stay readable in a log file.

On a terminal a bar redraws itself in place. Written to a file (a SLURM log, CI's output, `nohup`), each
redraw is another chunk of text: a training loop that sets its losses on the bar every step wrote one line
per step. Off a terminal, a bar here redraws at most every LOG_SECONDS and every LOG_SHARE of its total,
and setting its postfix does not force a redraw."""
from __future__ import annotations

import sys

LOG_SECONDS = 30.0
LOG_SHARE = 0.05


def _interactive(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


def progress(**kwargs):
    """tqdm(**kwargs), throttled when its stream is not a terminal."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        def set_postfix(self, ordered_dict=None, refresh=True, **kw):
            super().set_postfix(ordered_dict, refresh=refresh and self.interactive, **kw)

    interactive = _interactive(kwargs.get("file") or sys.stderr)
    if not interactive:
        kwargs.setdefault("mininterval", LOG_SECONDS)
        if kwargs.get("total"):
            kwargs.setdefault("miniters", max(1, int(kwargs["total"] * LOG_SHARE)))
    bar = Bar(**kwargs)
    bar.interactive = interactive
    return bar
