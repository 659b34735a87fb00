"""Every scenario writes the same three files: JSON (all figures), a markdown table, a PNG bar chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(out: str | Path, report: dict[str, Any], lines: list[str], bars: dict[str, float], *, title: str, ylabel: str,
          limit: tuple[float, str] | None = None) -> None:
    """Write ``out``.json, ``out``.md and ``out``.png; the first bar is the pipeline's (green)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.bar(list(bars), list(bars.values()), color=["tab:green"] + ["tab:gray"] * (len(bars) - 1))
    if limit is not None:
        ax.axhline(limit[0], color="tab:red", linestyle="--", label=limit[1])
        ax.legend()
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"))
    plt.close(fig)
    print("\n".join(lines))
