"""Which archive runs to start: one plan for the sensors, the CLI's `process` and anything else that starts runs.

A tenant gets runs while it has pending requests, or work that runs now over left behind
(batches whose run ended before their requests were answered, stored packages whose members
still wait for their check). Up to its concurrency (GLACIER_TENANT_RUNS, default 1) runs of a
tenant may work at once: each claims its own batch, and the catalog's atomic claims keep every
request in exactly one batch. Run keys derive from the catalog's state, so planning twice
launches nothing twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import keys


@dataclass(frozen=True)
class PlannedRun:
    tenant: str
    run_key: str
    slot: int  # 0 .. concurrency-1: which of the tenant's parallel runs this is


def parse_concurrency(text: str) -> tuple[int, dict[str, int]]:
    """``"2"`` or ``"1,lab=4,museum=2"``: a default and per-tenant overrides, each a whole number >= 1."""
    default, per_tenant = 1, {}
    for item in filter(None, (x.strip() for x in (text or "").split(","))):
        name, sep, value = item.rpartition("=")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"GLACIER_TENANT_RUNS: {item!r} is not N or tenant=N with N a whole number >= 1") from None
        if number < 1:
            raise ValueError(f"GLACIER_TENANT_RUNS: {item!r}: N must be at least 1")
        if sep:
            per_tenant[keys.validate_tenant(name.strip())] = number
        else:
            default = number
    return default, per_tenant


def plan_archive_runs(
    catalog: Catalog,
    run_finished: Callable[[str], bool],
    *,
    batch_size: int,
    concurrency: str = "1",
    runs_in_progress: Callable[[str], int] = lambda tenant: 0,
) -> list[PlannedRun]:
    """The archive runs to start now, per tenant (see the module docstring)."""
    default, per_tenant = parse_concurrency(concurrency)
    plans = []
    for tenant in catalog.tenants_with_work():
        if not tenant:
            continue
        marker = catalog.pending_marker(tenant)
        abandoned = sorted(b for b, owner in catalog.batch_runs_in_flight(tenant).items() if run_finished(owner))
        abandoned += sorted(p["id"] for p in PackageStore(catalog).awaiting_check(tenant) if not p["run_id"] or run_finished(p["run_id"]))
        if marker is None and not abandoned:
            continue
        wanted = 1
        limit = per_tenant.get(tenant, default)
        if limit > 1 and marker is not None:
            pending = catalog.status_counts(tenant).get(t.PENDING, 0)
            wanted = min(limit, max(1, math.ceil(pending / max(batch_size, 1))))
        free = wanted if limit == 1 else max(0, wanted - runs_in_progress(tenant))
        base = f"{tenant}:{marker}:{','.join(abandoned)}"
        plans += [PlannedRun(tenant, base if slot == 0 else f"{base}:{slot}", slot) for slot in range(free)]
    return plans
