"""Applying the per-tenant lifecycle declaration to the buckets: read, merge (other tools' rules kept), write what changed."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from glacier_pipelines.core import lifecycle
from glacier_pipelines.core.faults import error_code
from glacier_pipelines.core.moves import MoveError

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


def current_rules(s3: Any, bucket: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The bucket's lifecycle rules (none when it has no configuration) and the settings to write back with them."""
    try:
        resp = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchLifecycleConfiguration":
            return [], {}
        if code == "NoSuchBucket":
            raise MoveError(f"bucket {bucket} does not exist") from None
        raise
    extra = (
        {"TransitionDefaultMinimumObjectSize": resp["TransitionDefaultMinimumObjectSize"]}
        if resp.get("TransitionDefaultMinimumObjectSize")
        else {}
    )
    return list(resp.get("Rules", [])), extra


def apply_lifecycle(s3: Any, config: lifecycle.LifecycleConfig, *, dry_run: bool = False) -> LifecycleReport:
    """Make every governed bucket hold the declared project rules, keeping every other rule; write only what changed."""
    report = LifecycleReport(declared=config.declared)
    if not config.declared:
        return report
    for bucket in config.buckets():
        rules, extra = current_rules(s3, bucket)
        p = lifecycle.merge(bucket, rules, config.project_rules(bucket))
        report.plans.append(p)
        if dry_run or not p.has_changes:
            continue
        if p.rules:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": p.rules}, **extra)
        else:
            s3.delete_bucket_lifecycle(Bucket=bucket)
        report.written.append(bucket)
        again, _ = current_rules(s3, bucket)
        if lifecycle.merge(bucket, again, config.project_rules(bucket)).has_changes:
            report.settled = False
            log.warning("bucket %s: its lifecycle rules still differ from the declaration after writing them", bucket)
    return report
