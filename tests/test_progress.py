"""Progress bars written to a log (not a terminal) print at most every few percent and seconds."""
from __future__ import annotations

import io

from safeeraser.progress import LOG_SHARE, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _redraws(text: str) -> list[str]:
    return [part for part in text.replace("\n", "\r").split("\r") if part.strip()]


def test_a_log_gets_a_few_lines_however_often_the_loop_updates_and_sets_its_postfix():
    log = io.StringIO()
    with progress(total=2000, desc="gdpd", file=log) as bar:
        for step in range(2000):
            bar.update(1)
            bar.set_postfix({"loss": f"{step:.3f}"})
    lines = _redraws(log.getvalue())
    # the opening line, the final one, and in between at most one per LOG_SHARE of the total
    assert 2 <= len(lines) <= 2 + int(1 / LOG_SHARE), len(lines)
    assert "2000/2000" in lines[-1] and "loss=1999.000" in lines[-1]


def test_a_terminal_keeps_redrawing_as_it_did():
    tty = Terminal()
    with progress(total=200, desc="gdpd", file=tty, mininterval=0) as bar:
        for step in range(200):
            bar.update(1)
            bar.set_postfix({"loss": f"{step:.3f}"})
    assert len(_redraws(tty.getvalue())) > 200  # a redraw per update and per postfix
