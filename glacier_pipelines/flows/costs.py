"""Cost per tenant: what its archive costs each month, and what its restores were estimated to cost."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import sqlalchemy as sa

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.restores import live_member_copies
from glacier_pipelines.core import pricing

COLUMNS = ["tenant", "kind", "storage_class", "tier", "objects", "bytes", "usd"]


def cost_table(catalog: Catalog, prices: pricing.Pricing | None, tenant: str | None = None) -> pd.DataFrame:
    """One row per tenant and storage class (archive, per month) and per tenant and tier (restores, estimated)."""
    o, r = t.objects, t.restores
    archive_q = sa.select(o.c.tenant, o.c.storage_class, sa.func.count(), sa.func.sum(o.c.size)).group_by(o.c.tenant, o.c.storage_class)
    restore_q = (
        sa.select(r.c.tenant, o.c.storage_class, r.c.tier, sa.func.count(), sa.func.sum(o.c.size), sa.func.sum(r.c.estimated_cost_usd))
        .join(o, o.c.id == r.c.object_id)
        .where(r.c.status.in_(("PENDING", "IN_PROGRESS", "READY", "EXPIRED")))
        .group_by(r.c.tenant, o.c.storage_class, r.c.tier)
    )
    if tenant is not None:
        archive_q = archive_q.where(o.c.tenant == tenant)
        restore_q = restore_q.where(r.c.tenant == tenant)
    rows: list[dict[str, Any]] = []
    with catalog.engine.connect() as conn:
        for name, storage_class, count, size in conn.execute(archive_q):
            usd = None
            if prices is not None:
                usd = pricing.estimate_archive(prices, storage_class=storage_class, size_bytes=int(size or 0), objects=int(count),
                                               months=1.0).total
            rows.append({"tenant": name, "kind": "archive (per month)", "storage_class": storage_class, "tier": "",
                         "objects": int(count), "bytes": int(size or 0), "usd": usd})
        rows += _staging_rows(conn, prices, tenant)
        rows += _restored_copy_rows(conn, prices, tenant)
        for name, storage_class, tier, count, size, usd in conn.execute(restore_q):
            rows.append({"tenant": name, "kind": "restore (estimated)", "storage_class": storage_class, "tier": tier,
                         "objects": int(count), "bytes": int(size or 0), "usd": float(usd) if usd is not None else None})
    return pd.DataFrame(rows, columns=COLUMNS)


def _staging_rows(conn: Any, prices: pricing.Pricing | None, tenant: str | None) -> list[dict[str, Any]]:
    """Staged bytes waiting in a GLACIER_STAGING_URL bucket (STANDARD, per month): verified files and open packages' members."""
    r, pm = t.requests, t.package_members
    waiting = sa.select(r.c.tenant, r.c.size, r.c.stage).where(r.c.status == t.VERIFIED)
    members = sa.select(pm.c.tenant, pm.c.size, pm.c.staged_path).where(pm.c.staged_path.like("s3://%"))
    if tenant is not None:
        waiting, members = waiting.where(r.c.tenant == tenant), members.where(pm.c.tenant == tenant)
    held: dict[str, list[int]] = {}
    for name, size, stage in conn.execute(waiting):  # the stage is JSON: filtered here, the same on SQLite and PostgreSQL
        if stage and stage.get("kind") in ("file", "member") and str(stage.get("path", "")).startswith("s3://"):
            held.setdefault(name, []).append(int(size or 0))
    for name, size, _ in conn.execute(members):
        held.setdefault(name, []).append(int(size or 0))
    rows = []
    for name, sizes in sorted(held.items()):
        usd = pricing.estimate_archive(prices, storage_class="STANDARD", size_bytes=sum(sizes), objects=len(sizes), months=1.0).total \
            if prices is not None else None
        rows.append({"tenant": name, "kind": "staging (per month)", "storage_class": "STANDARD", "tier": "", "objects": len(sizes),
                     "bytes": sum(sizes), "usd": usd})
    return rows


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


def _restored_copy_rows(conn: Any, prices: pricing.Pricing | None, tenant: str | None) -> list[dict[str, Any]]:
    """Restored package members copied (STANDARD) for their download links, while their links live (per month)."""
    rows = []
    for name, sizes in sorted(live_member_copies(conn, tenant).items()):
        usd = pricing.estimate_archive(prices, storage_class="STANDARD", size_bytes=sum(sizes), objects=len(sizes), months=1.0).total \
            if prices is not None else None
        rows.append({"tenant": name, "kind": "restored copies (per month)", "storage_class": "STANDARD", "tier": "",
                     "objects": len(sizes), "bytes": sum(sizes), "usd": usd})
    return rows
