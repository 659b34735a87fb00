"""Applying a declaration to a bucket: the project's rules merged with the bucket's, and the difference in words.

Merging keeps every rule of the bucket whose id lacks the project's prefix exactly as it is
(rules of other tools), and replaces or removes only the project's own rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from glacier_pipelines.core.lifecycle.rules import is_project_rule


def canonical(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule in one comparable shape: legacy top-level Prefix as a Filter, empty parts dropped, transitions by days."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in sorted(value.items()) if v not in (None, {}, [])}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        return value

    out = clean(dict(rule))
    if "Prefix" in out and "Filter" not in out:
        out["Filter"] = {"Prefix": out.pop("Prefix")}
    out.pop("Prefix", None)
    if "Filter" not in out:
        out["Filter"] = {"Prefix": ""}
    for key in ("Transitions", "NoncurrentVersionTransitions"):
        if key in out:
            out[key] = sorted(out[key], key=lambda t: (t.get("Days", t.get("NoncurrentDays", 0)), str(t.get("Date", ""))))
    return out


@dataclass
class LifecyclePlan:
    """What applying a declaration to one bucket does: the full rule list to write and the diff."""

    bucket: str
    rules: list[dict[str, Any]]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # rules of other tools, kept as they are
    details: dict[str, str] = field(default_factory=dict)  # rule id -> what changed, in words

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "foreign_kept": len(self.foreign),
        }

    def rows(self) -> list[tuple[str, str, str]]:
        """(rule id, change, details) for every rule the bucket holds before or after."""
        out = [(i, "added", self.details.get(i, "")) for i in self.added]
        out += [(i, "changed", self.details.get(i, "")) for i in self.changed]
        out += [(i, "removed", self.details.get(i, "")) for i in self.removed]
        out += [(i, "unchanged", self.details.get(i, "")) for i in self.unchanged]
        out += [(i, "kept (not ours)", self.details.get(i, "")) for i in self.foreign]
        return out


def describe(rule: Mapping[str, Any]) -> str:
    """A rule in words: ``archive/lab/trash/: GLACIER after 30 d, DEEP_ARCHIVE after 180 d; expire after 3650 d``."""
    c = canonical(rule)
    f = c.get("Filter", {})
    prefix = f.get("Prefix", f.get("And", {}).get("Prefix", "")) if isinstance(f, Mapping) else ""
    parts = [f"{t['StorageClass']} after {t.get('Days', t.get('Date'))} d" for t in c.get("Transitions", [])]
    if "Expiration" in c:
        exp = c["Expiration"]
        parts.append(f"expire after {exp['Days']} d" if "Days" in exp else f"expire {json.dumps(exp, sort_keys=True)}")
    if "AbortIncompleteMultipartUpload" in c:
        parts.append(f"abort incomplete uploads after {c['AbortIncompleteMultipartUpload'].get('DaysAfterInitiation')} d")
    other = sorted(set(c) - {"ID", "Filter", "Status", "Transitions", "Expiration", "AbortIncompleteMultipartUpload"})
    parts += [f"{k} set" for k in other]
    status = "" if c.get("Status") == "Enabled" else f" ({c.get('Status', '?')})"
    return f"{prefix or '(whole bucket)'}: {'; '.join(parts) or 'no action'}{status}"


def merge(bucket: str, current: Iterable[Mapping[str, Any]], desired: Iterable[Mapping[str, Any]]) -> LifecyclePlan:
    """The bucket's rules after applying ``desired`` (the project's rules for it) to ``current`` (what S3 holds).

    Rules whose id does not start with ``glacier-pipelines:`` are kept unchanged and in place;
    project rules are added, replaced or removed to match ``desired``.
    """
    wanted = {r["ID"]: dict(r) for r in desired}
    plan = LifecyclePlan(bucket=bucket, rules=[])
    seen: set[str] = set()
    for rule in [dict(r) for r in current]:
        rid = str(rule.get("ID") or "")
        if not is_project_rule(rule):
            plan.rules.append(rule)
            plan.foreign.append(rid or "(rule without id)")
            plan.details[rid or "(rule without id)"] = describe(rule)
            continue
        if rid in seen:  # a duplicate id cannot be written back; keep the first
            continue
        seen.add(rid)
        if rid not in wanted:
            plan.removed.append(rid)
            plan.details[rid] = describe(rule)
        elif canonical(rule) == canonical(wanted[rid]):
            plan.unchanged.append(rid)
            plan.details[rid] = describe(rule)
        else:
            plan.changed.append(rid)
            plan.details[rid] = f"{describe(rule)} → {describe(wanted[rid])}"
    for rid in sorted(wanted):
        if rid not in seen:
            plan.added.append(rid)
            plan.details[rid] = describe(wanted[rid])
    plan.rules += [wanted[rid] for rid in sorted(wanted)]
    return plan


def markdown(plans: Sequence[LifecyclePlan]) -> str:
    """The diff of every bucket as one markdown table."""
    rows = [(p.bucket, rid, change, details) for p in plans for rid, change, details in p.rows()]
    if not rows:
        return "No lifecycle rules, declared or present."

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| bucket | rule | change | rule in words |", "|---|---|---|---|"]
    lines += [f"| {cell(b)} | `{cell(r)}` | {c} | {cell(d)} |" for b, r, c, d in rows]
    return "\n".join(lines)
