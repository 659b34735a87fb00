"""Cost per tenant: what its archive costs each month, and what its restores were estimated to cost."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog.costs import CostQueries, Held
from glacier_pipelines.catalog.worker_requests import WorkerRequestStore
from glacier_pipelines.core import pricing

COLUMNS = ["tenant", "kind", "storage_class", "tier", "objects", "bytes", "usd"]


def cost_table(catalog: Catalog, prices: pricing.Pricing | None, tenant: str | None = None) -> pd.DataFrame:
    """One row per tenant and storage class (archive, per month) and per tenant and tier (restores, estimated).

    Staged bytes (in a GLACIER_STAGING_URL bucket) and restored package members' copies are STANDARD
    storage, priced per month as long as they are held.
    """
    held = CostQueries(catalog).holdings(tenant)
    rows = [_held_row(h, "archive (per month)", prices) for h in held.archived]
    rows += [_held_row(h, "staging (per month)", prices) for h in held.staged]
    rows += [_held_row(h, "restored copies (per month)", prices) for h in held.restored_copies]
    rows += [
        {
            "tenant": r.tenant,
            "kind": "restore (estimated)",
            "storage_class": r.storage_class,
            "tier": r.tier,
            "objects": r.objects,
            "bytes": r.size,
            "usd": r.estimated_usd,
        }
        for r in held.restores
    ]
    rows += [
        {"tenant": n, "kind": "early deletion (charged)", "storage_class": c, "tier": "", "objects": k, "bytes": b, "usd": u}
        for n, c, k, b, u in WorkerRequestStore(catalog).early_deletion_charges(tenant)
    ]  # deletions, trash purges, compactions
    return pd.DataFrame(rows, columns=COLUMNS)


def _held_row(held: Held, kind: str, prices: pricing.Pricing | None) -> dict[str, Any]:
    """A month of keeping ``held`` in its class, priced when there is a price list."""
    usd = None
    if prices is not None:
        usd = pricing.estimate_archive(
            prices, storage_class=held.storage_class, size_bytes=held.size, objects=held.objects, months=1.0
        ).total
    return {
        "tenant": held.tenant,
        "kind": kind,
        "storage_class": held.storage_class,
        "tier": "",
        "objects": held.objects,
        "bytes": held.size,
        "usd": usd,
    }


def markdown(df: pd.DataFrame) -> str:
    """A markdown table without pulling in ``tabulate`` for ``DataFrame.to_markdown``."""
    if df.empty:
        return "No costs yet."
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if v is None or v != v else (f"{v:.6f}" if isinstance(v, float) else str(v)) for v in row) + " |")
    return "\n".join(lines)


def plot_png(df: pd.DataFrame) -> bytes:
    """A bar chart of USD by tenant, stacked by storage class (archive) and tier (restores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    if df.empty or df["usd"].isna().all():
        ax.text(0.5, 0.5, "no costs yet", ha="center", va="center")
        ax.set_axis_off()
    else:
        data = df.assign(series=df["kind"].str.split().str[0] + " " + df["storage_class"] + df["tier"].map(lambda x: f" {x}" if x else ""))
        pivot = data.pivot_table(index="tenant", columns="series", values="usd", aggfunc="sum", fill_value=0.0)
        pivot.plot(kind="bar", stacked=True, ax=ax)
        ax.set_ylabel("USD")
        ax.set_title("Cost by tenant: archive per month and restores (estimated)")
        ax.legend(fontsize=7)
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
