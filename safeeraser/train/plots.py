"""Loss curves from log.jsonl."""
from __future__ import annotations

import os
from pathlib import Path


def _keys(rows: list[dict], prefix: str) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r if k.startswith(prefix)))


def _curve(ax, rows: list[dict], key: str, **kw) -> None:
    # a value logged on some steps only (SCRUB's terms, the in-training evaluation) is plotted where it is
    ax.plot([r["step"] for r in rows if r.get(key) is not None], [r[key] for r in rows if r.get(key) is not None],
            **kw)


def plot_loss_curves(rows: list[dict], out: str | Path, title: str = "") -> Path | None:
    """One panel per loss term, the learning rate, and (when the run evaluated during training) one
    panel with the eval/* NLLs together: forget rising while retain stays is what unlearning should show;
    and one with the quick ASR and SARR when measured."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys, evals = _keys(rows, "loss/"), _keys(rows, "eval/")
    # NLLs and rates (the quick ASR's shares, 0-1) on panels of their own: their scales differ
    rates = [k for k in evals if not k.endswith("_nll")]
    evals = [k for k in evals if k.endswith("_nll")]
    panels = len(keys) + 1 + bool(evals) + bool(rates)
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.2), squeeze=False)
    axes = list(axes[0])
    for ax, key in zip(axes, keys):
        _curve(ax, rows, key, marker=".")
        ax.set_title(key.split("/", 1)[1])
    lr_ax = axes[len(keys)]
    _curve(lr_ax, rows, "lr", color="grey")
    lr_ax.set_title("learning rate")
    for ax, group, what in zip(axes[len(keys) + 1:], [g for g in (evals, rates) if g],
                               [w for g, w in ((evals, "answer NLL"), (rates, "quick ASR, SARR")) if g]):
        for key in group:
            _curve(ax, rows, key, marker="o", label=key.split("/", 1)[1])
        ax.set_title(f"in-training eval ({what})")
        ax.legend(fontsize="small")
    for ax in axes:
        ax.set_xlabel("optimizer step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")  # renamed when whole: a killed run leaves no half-written figure
    try:
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
