"""Applying the per-tenant lifecycle declaration to the buckets: read, merge (other tools' rules kept), write what changed."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from glacier_pipelines.core import lifecycle
from glacier_pipelines.core.moves import MoveError
from glacier_pipelines.core.objectstore import BucketAdmin, StoreError

log = logging.getLogger(__name__)


@dataclass
class LifecycleReport:
    declared: bool
    plans: list[lifecycle.LifecyclePlan] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # buckets whose configuration was written
    settled: bool = True  # a read-back after writing shows no difference left

    def totals(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for p in self.plans:
            out.update(p.counts())
        return {k: out.get(k, 0) for k in ("added", "changed", "removed", "unchanged", "foreign_kept")}


def current_rules(buckets: BucketAdmin, bucket: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The bucket's lifecycle rules (none when it has no configuration) and the settings to write back with them."""
    try:
        resp = buckets.lifecycle(bucket)
    except StoreError as exc:
        if exc.code == "NoSuchBucket":
            raise MoveError(f"bucket {bucket} does not exist") from None
        raise
    if resp is None:
        return [], {}
    extra = (
        {"TransitionDefaultMinimumObjectSize": resp["TransitionDefaultMinimumObjectSize"]}
        if resp.get("TransitionDefaultMinimumObjectSize")
        else {}
    )
    return list(resp.get("Rules", [])), extra


def apply_lifecycle(buckets: BucketAdmin | Any, config: lifecycle.LifecycleConfig, *, dry_run: bool = False) -> LifecycleReport:
    """Make every governed bucket hold the declared project rules, keeping every other rule; write only what changed.
    ``buckets``: a BucketAdmin, or the boto3 client to build one on."""
    buckets = buckets if isinstance(buckets, BucketAdmin) else BucketAdmin(buckets)
    report = LifecycleReport(declared=config.declared)
    if not config.declared:
        return report
    for bucket in config.buckets():
        rules, extra = current_rules(buckets, bucket)
        p = lifecycle.merge(bucket, rules, config.project_rules(bucket))
        report.plans.append(p)
        if dry_run or not p.has_changes:
            continue
        if p.rules:
            buckets.put_lifecycle(bucket, p.rules, extra)
        else:
            buckets.delete_lifecycle(bucket)
        report.written.append(bucket)
        again, _ = current_rules(buckets, bucket)
        if lifecycle.merge(bucket, again, config.project_rules(bucket)).has_changes:
            report.settled = False
            log.warning("bucket %s: its lifecycle rules still differ from the declaration after writing them", bucket)
    return report
