"""The lifecycle file as pydantic models, and its rules placed in the deployment, each scoped to its tenant's keys.

What a field accepts on its own (names, day counts, classes in S3's waterfall, relative prefixes,
s3:// URLs) is checked by the models; what depends on the deployment (the archive bucket, the key
prefix, the tenant's own prefix and sources, other tenants' sources) is checked after, against
them. Every problem of the file is reported at once, each naming its field.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from glacier_pipelines.core import keys, validation
from glacier_pipelines.core.constants import TRANSITION_CLASSES
from glacier_pipelines.core.lifecycle.rules import DEFAULT_TRASH_PREFIX, LifecycleConfig, Rule, Source, TenantLifecycle, Transition

MAX_RULES_PER_BUCKET = 1000  # S3's limit for one lifecycle configuration
# The only order S3 moves objects in (a waterfall, warmest first); a rule's transitions must follow it.
WATERFALL = tuple(reversed(TRANSITION_CLASSES))
# Days an object must stay in a class before a rule may move it on (the class's minimum storage
# duration; S3 refuses shorter gaps out of GLACIER_IR and GLACIER, and they would be billed anyway).
MIN_DAYS_IN_CLASS = {"GLACIER_IR": 90, "GLACIER": 90, "DEEP_ARCHIVE": 180}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class LifecycleConfigError(ValueError):
    """A declaration that cannot be applied; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: Sequence[str], source: str = "lifecycle config"):
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> (bucket, key prefix); ValueError naming the problem."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"{url!r}: {bucket!r} is not a valid bucket name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix):
        raise ValueError(f"{url!r}: control characters in the key")
    if any(seg in (".", "..") for seg in prefix.split("/")):
        raise ValueError(f"{url!r}: '.' and '..' segments are refused")
    return bucket, prefix


def relative_prefix(value: str) -> str:
    """A tenant-relative prefix as keys spell it (``trash/``); ValueError when it would escape or change."""
    if value.startswith("/") or "\\" in value:
        raise ValueError(f"{value!r} must be relative to the tenant's prefix (no leading '/', no backslashes)")
    stripped = value.strip("/")
    try:
        clean = keys.sanitize_directory(stripped)
    except keys.InvalidKey as exc:
        raise ValueError(f"{value!r} {exc}") from None
    if clean != stripped:
        raise ValueError(f"{value!r} has characters that are not used in keys (it would become {clean!r})")
    return clean + "/" if clean and (value.endswith("/") or not value) else clean


# -- the file ------------------------------------------------------------------------------------

Days = Annotated[int, Field(strict=True, ge=1)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransitionFile(_Table):
    """``{days = 30, storage_class = "GLACIER"}``: the class is case-insensitive, one of the waterfall's."""

    days: Annotated[int, Field(strict=True, ge=0)]
    storage_class: StrictStr

    @field_validator("storage_class", mode="before")
    @classmethod
    def _class(cls, value: Any) -> Any:
        name = value.strip().upper() if isinstance(value, str) else value
        if name not in WATERFALL:
            raise ValueError(f"{value!r} is not one of {', '.join(WATERFALL)}")
        return name


class RuleFile(_Table):
    """``[[tenants.<name>.rules]]``: a named rule over a tenant-relative prefix (or ``s3://`` inside a source)."""

    name: StrictStr
    prefix: StrictStr = ""
    transitions: list[TransitionFile] = []
    expiration_days: Days | None = None
    abort_incomplete_multipart_days: Days | None = None
    enabled: StrictBool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(f"{value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("s3://"):
            parse_s3_url(value)
            return value
        return relative_prefix(value)

    @field_validator("transitions")
    @classmethod
    def _waterfall(cls, value: list[TransitionFile]) -> list[TransitionFile]:
        ordered = sorted(value, key=lambda t: t.days)
        problems = []
        for before, after in zip(ordered, ordered[1:]):
            if WATERFALL.index(after.storage_class) <= WATERFALL.index(before.storage_class):
                problems.append(
                    f"{after.storage_class} after {after.days} days cannot follow {before.storage_class} after "
                    f"{before.days} days (S3 only moves objects down: {' -> '.join(WATERFALL)})"
                )
            elif after.days - before.days < MIN_DAYS_IN_CLASS[before.storage_class]:
                problems.append(
                    f"{after.storage_class} after {after.days} days is only {after.days - before.days} days after "
                    f"{before.storage_class}; objects must stay {MIN_DAYS_IN_CLASS[before.storage_class]} days in "
                    f"{before.storage_class} first"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return ordered

    @field_validator("expiration_days")
    @classmethod
    def _after_transitions(cls, value: int | None, info: ValidationInfo) -> int | None:
        transitions = info.data.get("transitions") or []
        if value is not None and transitions and value <= transitions[-1].days:
            raise ValueError(f"{value} must be more than the last transition's {transitions[-1].days} days")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> RuleFile:
        if not self.transitions and self.expiration_days is None and self.abort_incomplete_multipart_days is None:
            raise ValueError("a rule needs at least one of transitions, expiration_days, abort_incomplete_multipart_days")
        return self


def _s3_url(value: str) -> str:
    parse_s3_url(value)
    return value


class TenantFile(_Table):
    """``[tenants.<name>]``: the tenant's rules, the places it may move objects from, and its trash."""

    rules: list[RuleFile] = []
    sources: list[Annotated[StrictStr, AfterValidator(_s3_url)]] = []
    trash_prefix: StrictStr = DEFAULT_TRASH_PREFIX

    @field_validator("trash_prefix")
    @classmethod
    def _trash(cls, value: str) -> str:
        clean = relative_prefix(value)
        if not clean:
            raise ValueError("must not be empty (the trash lives under the tenant's prefix)")
        return clean if clean.endswith("/") else clean + "/"

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[RuleFile]) -> list[RuleFile]:
        names = [r.name for r in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(", ".join(f"{n!r}" for n in twice) + " is used twice: rule names are unique per tenant")
        return value


class LifecycleFile(_Table):
    """The whole file: one ``[tenants.<name>]`` section per tenant (checked one tenant at a time)."""

    tenants: dict[str, Any] = {}


_MESSAGES = {kind: "must be a whole number of days, not {input}" for kind in ("int_type", "int_parsing", "int_from_float")}


def _problems(exc: ValidationError, model: type[BaseModel], where: str) -> list[str]:
    out = []
    for p in validation.problems(exc, model, _MESSAGES):
        here = where + ("" if not where or not p.where or p.where.startswith("[") else ".") + p.where
        out.append(f"{here or 'top level'}: {p.message}")
    return out


# -- parsing ---------------------------------------------------------------------------------------


def _overlap(a: Source, b: Source) -> bool:
    return a.bucket == b.bucket and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix))


def _reaches_others(src: Source, name: str, archives: set[tuple[str, str]]) -> bool:
    """Whether ``src`` overlaps an archive prefix (global or a tenant's) outside tenant ``name``'s own keys there."""
    for bucket, key_prefix in archives:
        own = keys.tenant_prefix(key_prefix, name)
        if (
            src.bucket == bucket
            and not src.prefix.startswith(own)
            and (not key_prefix or src.prefix.startswith(key_prefix + "/") or (key_prefix + "/").startswith(src.prefix))
        ):
            return True
    return False


def _tenant(
    name: str, table: TenantFile, bucket: str, key_prefix: str, problems: list[str], archives: set[tuple[str, str]] | None = None
) -> TenantLifecycle:
    """The tenant's declaration placed in the deployment (``bucket`` and ``key_prefix``: the tenant's archive): sources
    outside other tenants' keys in any of ``archives``, rules inside its own prefix or its sources."""
    where, own = f"tenants.{name}", keys.tenant_prefix(key_prefix, name)
    sources = []
    for i, url in enumerate(table.sources):
        src = Source(*parse_s3_url(url))
        if _reaches_others(src, name, (archives or set()) | {(bucket, key_prefix)}):
            problems.append(f"{where}.sources[{i}]: {url!r} reaches into the archive prefix of other tenants")
            continue
        sources.append(src)
    rules = []
    for i, raw in enumerate(table.rules):
        if raw.prefix.startswith("s3://"):
            rule_bucket, prefix = parse_s3_url(raw.prefix)
            inside_own = rule_bucket == bucket and prefix.startswith(own)
            if not inside_own and not any(s.covers(rule_bucket, prefix) for s in sources):
                problems.append(
                    f"{where}.rules[{i}].prefix: {raw.prefix!r} is outside tenant {name}'s prefix s3://{bucket}/{own} and its sources"
                )
                continue
        else:
            rule_bucket, prefix = bucket, own + raw.prefix
        transitions = tuple(Transition(t.days, t.storage_class) for t in raw.transitions)
        rules.append(
            Rule(
                tenant=name,
                name=raw.name,
                bucket=rule_bucket,
                prefix=prefix,
                transitions=transitions,
                expiration_days=raw.expiration_days,
                abort_incomplete_multipart_days=raw.abort_incomplete_multipart_days,
                enabled=raw.enabled,
            )
        )
    return TenantLifecycle(tenant=name, own_prefix=own, rules=tuple(rules), sources=tuple(sources), trash_prefix=table.trash_prefix)


def parse_config(
    raw: Any, *, bucket: str, key_prefix: str, source: str = "lifecycle config", placements: Mapping[str, tuple[str, str]] | None = None
) -> LifecycleConfig:
    """Validate a parsed declaration; :class:`LifecycleConfigError` lists every problem found.

    ``placements`` (from GLACIER_TENANTS_CONFIG): tenant -> (bucket, key prefix) of its own archive; a tenant's relative
    rules and its restored-copies backstop go there instead of the global ``bucket`` and ``key_prefix``.
    """
    key_prefix = key_prefix.strip("/")
    placed = {name: (b, p.strip("/")) for name, (b, p) in (placements or {}).items()}
    archives = {(bucket, key_prefix)} | set(placed.values())
    if not isinstance(raw, Mapping):
        raise LifecycleConfigError(["the file must hold a table with a [tenants.<name>] section per tenant"], source)
    problems: list[str] = []
    try:
        declared = LifecycleFile.model_validate(raw).tenants
    except ValidationError as exc:  # unknown top-level fields, or tenants not a table
        problems += _problems(exc, LifecycleFile, "")
        if not isinstance(raw.get("tenants", {}), Mapping):
            raise LifecycleConfigError(problems, source) from None
        declared = dict(raw.get("tenants", {}))
    tenants: dict[str, TenantLifecycle] = {}
    for name, table in declared.items():
        where = f"tenants.{name}"
        try:
            keys.validate_tenant(name)
            parsed = TenantFile.model_validate(table)
        except keys.InvalidKey as exc:
            problems.append(f"{where}: {exc}")
            continue
        except ValidationError as exc:
            problems += _problems(exc, TenantFile, where)
            continue
        tenants[name] = _tenant(name, parsed, *placed.get(name, (bucket, key_prefix)), problems, archives)
    claimed = [(name, src) for name, t in tenants.items() for src in t.sources]
    for i, (ta, a) in enumerate(claimed):
        for tb, b in claimed[i + 1 :]:
            if ta != tb and _overlap(a, b):
                problems.append(
                    f"tenants.{ta}.sources and tenants.{tb}.sources overlap ({a.url} and {b.url}): a source belongs to one tenant"
                )
    per_bucket: dict[str, int] = {}
    for rule in (r for t in tenants.values() for r in t.rules):
        per_bucket[rule.bucket] = per_bucket.get(rule.bucket, 0) + 1
    for name, count in per_bucket.items():
        if count > MAX_RULES_PER_BUCKET:
            problems.append(f"bucket {name}: {count} rules declared, S3 allows {MAX_RULES_PER_BUCKET} per bucket")
    if problems:
        raise LifecycleConfigError(problems, source)
    return LifecycleConfig(bucket=bucket, key_prefix=key_prefix, tenants=tenants, placements=placed)


def load_config(
    path: str | Path | None, *, bucket: str, key_prefix: str, placements: Mapping[str, tuple[str, str]] | None = None
) -> LifecycleConfig:
    """Read the declaration named by GLACIER_LIFECYCLE_CONFIG (TOML, or JSON for ``.json``); none: an undeclared config."""
    if not path:
        return LifecycleConfig(
            bucket=bucket,
            key_prefix=key_prefix.strip("/"),
            declared=False,
            placements={name: (b, p.strip("/")) for name, (b, p) in (placements or {}).items()},
        )
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LifecycleConfigError([f"cannot read it: {exc.strerror or exc}"], str(p)) from None
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LifecycleConfigError([f"not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {exc}"], str(p)) from None
    return parse_config(raw, bucket=bucket, key_prefix=key_prefix, source=str(p), placements=placements)
