"""Per-tenant lifecycle rules as configuration: parse, render for S3, merge with the bucket's rules, diff.

The declaration is a TOML (or JSON) file named by ``GLACIER_LIFECYCLE_CONFIG``::

    [tenants.lab]
    sources = ["s3://uploads/lab/"]   # where `move` may read, besides the tenant's own prefix
    trash_prefix = "trash/"           # tenant-relative; default "trash/"

    [[tenants.lab.rules]]
    name = "trash"
    prefix = "trash/"                 # tenant-relative (archive/lab/trash/), or s3://B/P inside a source
    transitions = [{days = 30, storage_class = "GLACIER"}, {days = 180, storage_class = "DEEP_ARCHIVE"}]
    expiration_days = 3650            # optional
    abort_incomplete_multipart_days = 7   # optional

Every rule of a tenant is scoped to that tenant's keys, so one tenant's rules never touch
another's objects. Rules get the ids ``glacier-pipelines:<tenant>:<name>``. Merging keeps every
rule of the bucket whose id lacks that prefix exactly as it is (rules of other tools), and
replaces or removes only the project's own rules. Plain Python, no S3 calls: the caller reads
and writes the bucket's configuration.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from glacier_pipelines.core import keys
from glacier_pipelines.core.restores import SIGV4_MAX_SECONDS

RULE_ID_PREFIX = "glacier-pipelines:"
DEFAULT_TRASH_PREFIX = "trash/"
MAX_RULES_PER_BUCKET = 1000  # S3's limit for one lifecycle configuration
# Storage classes a rule may transition into, in the only order S3 allows (a waterfall).
TRANSITION_CLASSES = ("GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
# Days an object must stay in a class before a rule may move it on (the class's minimum storage
# duration; S3 refuses shorter gaps out of GLACIER_IR and GLACIER, and they would be billed anyway).
MIN_DAYS_IN_CLASS = {"GLACIER_IR": 90, "GLACIER": 90, "DEEP_ARCHIVE": 180}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RULE_KEYS = {"name", "prefix", "transitions", "expiration_days", "abort_incomplete_multipart_days", "enabled"}
_TENANT_KEYS = {"rules", "sources", "trash_prefix"}
_TRANSITION_KEYS = {"days", "storage_class"}

# Restored package members are copied (STANDARD, tagged) under <tenant prefix>/restored/<restore id>/ for their
# download links; restore_expiry deletes each copy when its link lapses. The backstop, one rule per archive bucket,
# expires any copy left behind a day after the longest a link can live (SigV4's 7 days).
RESTORED_DIR = "restored"
RESTORED_COPY_TAG = ("glacier-pipelines", "restored-copy")
RESTORED_COPIES_RULE_ID = f"{RULE_ID_PREFIX}restored-copies"  # one colon: never a <tenant>:<name> id
RESTORED_COPY_EXPIRY_DAYS = SIGV4_MAX_SECONDS // 86400 + 1


class LifecycleConfigError(ValueError):
    """A declaration that cannot be applied; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: Sequence[str], source: str = "lifecycle config"):
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Transition:
    days: int
    storage_class: str


@dataclass(frozen=True)
class Rule:
    """One declared rule, with its absolute scope (bucket and key prefix)."""

    tenant: str
    name: str
    bucket: str
    prefix: str
    transitions: tuple[Transition, ...] = ()
    expiration_days: int | None = None
    abort_incomplete_multipart_days: int | None = None
    enabled: bool = True

    @property
    def id(self) -> str:
        return rule_id(self.tenant, self.name)

    def to_s3(self) -> dict[str, Any]:
        """The rule as ``PutBucketLifecycleConfiguration`` takes it."""
        out: dict[str, Any] = {"ID": self.id, "Filter": {"Prefix": self.prefix}, "Status": "Enabled" if self.enabled else "Disabled"}
        if self.transitions:
            out["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class} for t in self.transitions]
        if self.expiration_days is not None:
            out["Expiration"] = {"Days": self.expiration_days}
        if self.abort_incomplete_multipart_days is not None:
            out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": self.abort_incomplete_multipart_days}
        return out


@dataclass(frozen=True)
class Source:
    """A place outside the tenant's own prefix that the tenant may move objects from."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def covers(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)


@dataclass(frozen=True)
class TenantLifecycle:
    tenant: str
    own_prefix: str  # <key prefix>/<tenant>/ in the archive bucket
    rules: tuple[Rule, ...] = ()
    sources: tuple[Source, ...] = ()
    trash_prefix: str = DEFAULT_TRASH_PREFIX  # tenant-relative

    @property
    def trash_key_prefix(self) -> str:
        return self.own_prefix + self.trash_prefix


@dataclass(frozen=True)
class LifecycleConfig:
    """The whole declaration; a tenant it does not name has no rules, no sources and the default trash prefix."""

    bucket: str
    key_prefix: str
    tenants: Mapping[str, TenantLifecycle] = field(default_factory=dict)
    declared: bool = True  # False when no file is configured: then nothing is applied

    def tenant(self, tenant: str) -> TenantLifecycle:
        if tenant in self.tenants:
            return self.tenants[tenant]
        return TenantLifecycle(tenant=tenant, own_prefix=keys.tenant_prefix(self.key_prefix, tenant))

    def rules(self) -> list[Rule]:
        return [rule for t in self.tenants.values() for rule in t.rules]

    def buckets(self) -> list[str]:
        """Buckets whose project rules this declaration governs: the archive bucket, and every bucket a rule names."""
        return sorted({self.bucket} | {rule.bucket for rule in self.rules()})

    def desired(self, bucket: str) -> list[dict[str, Any]]:
        """The declared rules for ``bucket``, as S3 takes them."""
        return [rule.to_s3() for rule in sorted(self.rules(), key=lambda r: r.id) if rule.bucket == bucket]

    def project_rules(self, bucket: str) -> list[dict[str, Any]]:
        """Every project rule ``bucket`` must hold: the declared ones, and on the archive bucket the restored-copies backstop."""
        return self.desired(bucket) + ([restored_copies_rule(self.key_prefix)] if bucket == self.bucket else [])


def restored_copies_rule(key_prefix: str) -> dict[str, Any]:
    """The backstop: tagged restored copies under the archive prefix expire after RESTORED_COPY_EXPIRY_DAYS."""
    tag = {"Key": RESTORED_COPY_TAG[0], "Value": RESTORED_COPY_TAG[1]}
    prefix = f"{key_prefix.strip('/')}/" if key_prefix.strip("/") else ""
    return {"ID": RESTORED_COPIES_RULE_ID, "Filter": {"And": {"Prefix": prefix, "Tags": [tag]}} if prefix else {"Tag": tag},
            "Status": "Enabled", "Expiration": {"Days": RESTORED_COPY_EXPIRY_DAYS}}


def rule_id(tenant: str, name: str) -> str:
    return f"{RULE_ID_PREFIX}{tenant}:{name}"


def is_project_rule(rule: Mapping[str, Any]) -> bool:
    return str(rule.get("ID") or "").startswith(RULE_ID_PREFIX)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> (bucket, key prefix); ValueError naming the problem."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"{url!r}: {bucket!r} is not a valid bucket name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix):
        raise ValueError(f"{url!r}: control characters in the key")
    if any(seg in (".", "..") for seg in prefix.split("/")):
        raise ValueError(f"{url!r}: '.' and '..' segments are refused")
    return bucket, prefix


def _relative_prefix(value: Any, where: str, problems: list[str]) -> str | None:
    if not isinstance(value, str):
        problems.append(f"{where}: must be a string")
        return None
    if value.startswith("/") or "\\" in value:
        problems.append(f"{where}: {value!r} must be relative to the tenant's prefix (no leading '/', no backslashes)")
        return None
    stripped = value.strip("/")
    try:
        clean = keys.sanitize_directory(stripped)
    except keys.InvalidKey as exc:
        problems.append(f"{where}: {value!r} {exc}")
        return None
    if clean != stripped:
        problems.append(f"{where}: {value!r} has characters that are not used in keys (it would become {clean!r})")
        return None
    return clean + "/" if clean and (value.endswith("/") or not value) else clean


def _int(value: Any, where: str, problems: list[str], minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{where}: must be a whole number of days, not {value!r}")
        return None
    if value < minimum:
        problems.append(f"{where}: must be at least {minimum}, not {value}")
        return None
    return value


def _unknown(table: Mapping[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(table) - allowed):
        problems.append(f"{where}: unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")


def _parse_transitions(value: Any, where: str, problems: list[str]) -> tuple[Transition, ...]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list of {{days, storage_class}} tables")
        return ()
    out = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{here}: must be a table with days and storage_class")
            continue
        _unknown(item, _TRANSITION_KEYS, here, problems)
        days = _int(item.get("days"), f"{here}.days", problems, 0)
        cls = str(item.get("storage_class", "")).strip().upper()
        if cls not in TRANSITION_CLASSES:
            problems.append(f"{here}.storage_class: {item.get('storage_class')!r} is not one of {', '.join(TRANSITION_CLASSES)}")
            continue
        if days is not None:
            out.append(Transition(days, cls))
    ordered = sorted(out, key=lambda t: t.days)
    for before, after in zip(ordered, ordered[1:]):
        if TRANSITION_CLASSES.index(after.storage_class) <= TRANSITION_CLASSES.index(before.storage_class):
            problems.append(f"{where}: {after.storage_class} after {after.days} days cannot follow {before.storage_class} after "
                            f"{before.days} days (S3 only moves objects down: {' -> '.join(TRANSITION_CLASSES)})")
        elif after.days - before.days < MIN_DAYS_IN_CLASS[before.storage_class]:
            problems.append(f"{where}: {after.storage_class} after {after.days} days is only {after.days - before.days} days after "
                            f"{before.storage_class}; objects must stay {MIN_DAYS_IN_CLASS[before.storage_class]} days in "
                            f"{before.storage_class} first")
    return tuple(ordered)


def _parse_rule(raw: Any, tenant: TenantLifecycle, config_bucket: str, where: str, problems: list[str]) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    _unknown(raw, _RULE_KEYS, where, problems)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        problems.append(f"{where}.name: {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    prefix_value = raw.get("prefix", "")
    bucket, prefix = config_bucket, None
    if isinstance(prefix_value, str) and prefix_value.startswith("s3://"):
        try:
            bucket, prefix = parse_s3_url(prefix_value)
        except ValueError as exc:
            problems.append(f"{where}.prefix: {exc}")
        else:
            inside_own = bucket == config_bucket and prefix.startswith(tenant.own_prefix)
            if not inside_own and not any(s.covers(bucket, prefix) for s in tenant.sources):
                problems.append(f"{where}.prefix: {prefix_value!r} is outside tenant {tenant.tenant}'s prefix "
                                f"s3://{config_bucket}/{tenant.own_prefix} and its sources")
                prefix = None
    else:
        rel = _relative_prefix(prefix_value, f"{where}.prefix", problems)
        prefix = None if rel is None else tenant.own_prefix + rel
    transitions = _parse_transitions(raw.get("transitions", []), f"{where}.transitions", problems)
    expiration = raw.get("expiration_days")
    if expiration is not None:
        expiration = _int(expiration, f"{where}.expiration_days", problems, 1)
        if expiration is not None and transitions and expiration <= transitions[-1].days:
            problems.append(f"{where}.expiration_days: {expiration} must be more than the last transition's {transitions[-1].days} days")
    abort = raw.get("abort_incomplete_multipart_days")
    if abort is not None:
        abort = _int(abort, f"{where}.abort_incomplete_multipart_days", problems, 1)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{where}.enabled: must be true or false")
    if not transitions and expiration is None and abort is None and len(problems) == before:
        problems.append(f"{where}: a rule needs at least one of transitions, expiration_days, abort_incomplete_multipart_days")
    if len(problems) > before or prefix is None:
        return None
    return Rule(tenant=tenant.tenant, name=name, bucket=bucket, prefix=prefix, transitions=transitions, expiration_days=expiration,
                abort_incomplete_multipart_days=abort, enabled=enabled)


def _overlap(a: Source, b: Source) -> bool:
    return a.bucket == b.bucket and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix))


def parse_config(raw: Any, *, bucket: str, key_prefix: str, source: str = "lifecycle config") -> LifecycleConfig:
    """Validate a parsed declaration; :class:`LifecycleConfigError` lists every problem found."""
    problems: list[str] = []
    key_prefix = key_prefix.strip("/")
    if not isinstance(raw, Mapping):
        raise LifecycleConfigError(["the file must hold a table with a [tenants.<name>] section per tenant"], source)
    _unknown(raw, {"tenants"}, "top level", problems)
    tenants_raw = raw.get("tenants", {})
    if not isinstance(tenants_raw, Mapping):
        raise LifecycleConfigError(["tenants: must be a table of [tenants.<name>] sections"], source)
    tenants: dict[str, TenantLifecycle] = {}
    all_sources: list[tuple[str, Source]] = []
    for name, table in tenants_raw.items():
        where = f"tenants.{name}"
        try:
            keys.validate_tenant(name)
        except keys.InvalidKey as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        _unknown(table, _TENANT_KEYS, where, problems)
        own = keys.tenant_prefix(key_prefix, name)
        sources = []
        raw_sources = table.get("sources", [])
        if not isinstance(raw_sources, list):
            problems.append(f"{where}.sources: must be a list of s3://bucket/prefix/ URLs")
            raw_sources = []
        for i, url in enumerate(raw_sources):
            try:
                src_bucket, src_prefix = parse_s3_url(url)
            except ValueError as exc:
                problems.append(f"{where}.sources[{i}]: {exc}")
                continue
            if src_bucket == bucket and not src_prefix.startswith(own) and (
                    not key_prefix or src_prefix.startswith(key_prefix + "/") or (key_prefix + "/").startswith(src_prefix)):
                problems.append(f"{where}.sources[{i}]: {url!r} reaches into the archive prefix of other tenants")
                continue
            src = Source(src_bucket, src_prefix)
            sources.append(src)
            all_sources.append((name, src))
        trash = table.get("trash_prefix", DEFAULT_TRASH_PREFIX)
        trash_rel = _relative_prefix(trash, f"{where}.trash_prefix", problems)
        if trash_rel is not None and not trash_rel:
            problems.append(f"{where}.trash_prefix: must not be empty (the trash lives under the tenant's prefix)")
            trash_rel = None
        if trash_rel is not None and not trash_rel.endswith("/"):
            trash_rel += "/"
        tenant = TenantLifecycle(tenant=name, own_prefix=own, sources=tuple(sources), trash_prefix=trash_rel or DEFAULT_TRASH_PREFIX)
        rules = []
        raw_rules = table.get("rules", [])
        if not isinstance(raw_rules, list):
            problems.append(f"{where}.rules: must be a list of [[tenants.{name}.rules]] tables")
            raw_rules = []
        seen: set[str] = set()
        for i, raw_rule in enumerate(raw_rules):
            rule = _parse_rule(raw_rule, tenant, bucket, f"{where}.rules[{i}]", problems)
            if rule is None:
                continue
            if rule.name in seen:
                problems.append(f"{where}.rules[{i}].name: {rule.name!r} is used twice")
                continue
            seen.add(rule.name)
            rules.append(rule)
        tenants[name] = TenantLifecycle(tenant=name, own_prefix=own, rules=tuple(rules), sources=tenant.sources,
                                        trash_prefix=tenant.trash_prefix)
    for i, (ta, a) in enumerate(all_sources):
        for tb, b in all_sources[i + 1:]:
            if ta != tb and _overlap(a, b):
                problems.append(f"tenants.{ta}.sources and tenants.{tb}.sources overlap ({a.url} and {b.url}): "
                                "a source belongs to one tenant")
    per_bucket: dict[str, int] = {}
    for t in tenants.values():
        for rule in t.rules:
            per_bucket[rule.bucket] = per_bucket.get(rule.bucket, 0) + 1
    for name, count in per_bucket.items():
        if count > MAX_RULES_PER_BUCKET:
            problems.append(f"bucket {name}: {count} rules declared, S3 allows {MAX_RULES_PER_BUCKET} per bucket")
    if problems:
        raise LifecycleConfigError(problems, source)
    return LifecycleConfig(bucket=bucket, key_prefix=key_prefix, tenants=tenants)


def load_config(path: str | Path | None, *, bucket: str, key_prefix: str) -> LifecycleConfig:
    """Read the declaration named by GLACIER_LIFECYCLE_CONFIG (TOML, or JSON for ``.json``); none: an undeclared config."""
    if not path:
        return LifecycleConfig(bucket=bucket, key_prefix=key_prefix.strip("/"), declared=False)
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LifecycleConfigError([f"cannot read it: {exc.strerror or exc}"], str(p)) from None
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LifecycleConfigError([f"not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {exc}"], str(p)) from None
    return parse_config(raw, bucket=bucket, key_prefix=key_prefix, source=str(p))


# -- merging with what the bucket holds ---------------------------------------------------------


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
        return {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed),
                "unchanged": len(self.unchanged), "foreign_kept": len(self.foreign)}

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
    current = [dict(r) for r in current]
    wanted = {r["ID"]: dict(r) for r in desired}
    plan = LifecyclePlan(bucket=bucket, rules=[])
    seen: set[str] = set()
    for rule in current:
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
