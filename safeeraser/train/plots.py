"""Loss curves from log.jsonl."""
from __future__ import annotations

from pathlib import Path


def plot_loss_curves(rows: list[dict], out: str | Path, title: str = "") -> Path | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # a term active on some steps only (SCRUB's) is plotted where it has values
    keys = list(dict.fromkeys(k for r in rows for k in r if k.startswith("loss/")))
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(4 * (len(keys) + 1), 3.2), squeeze=False)
    steps = [r["step"] for r in rows]
    for ax, key in zip(axes[0], keys):
        ax.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r], marker=".")
        ax.set_title(key.split("/", 1)[1])
        ax.set_xlabel("optimizer step")
    axes[0][-1].plot(steps, [r["lr"] for r in rows], color="grey")
    axes[0][-1].set_title("learning rate")
    axes[0][-1].set_xlabel("optimizer step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
