"""Per-tenant settings: ``GLACIER_TENANTS_CONFIG`` names a TOML file; what it leaves out falls back to today's variables.

```toml
[defaults]                      # optional: overrides the environment for every tenant
restore_days = 7

[tenants.lab]
bucket = "lab-archive"
key_prefix = "archive"
storage_class = "DEEP_ARCHIVE"  # DEEP_ARCHIVE, GLACIER, GLACIER_IR or STANDARD
restore_tier = "Bulk"           # Standard, Bulk or Expedited
restore_days = 14
sse = "aws:kms"                 # AES256 or aws:kms; omit for none
sse_kms_key_id = "arn:aws:kms:eu-west-1:111122223333:key/..."
small_file_threshold_bytes = 65536
compact_deleted_share = 0.5     # a package whose deleted members reach this share of its bytes is due for repacking
```

Loading validates everything at once and names the file, the table and the field of each
problem; it never echoes values of keys that look like credentials (those are refused: they
belong to the AWS credential chain, not to this file).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator, model_validator

from glacier_pipelines.core import keys
from glacier_pipelines.core.constants import TIERS

ENV_VAR = "GLACIER_TENANTS_CONFIG"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SECRET_LIKE = re.compile(r"secret|password|token|access_key|credential", re.IGNORECASE)
FIELDS = (
    "bucket",
    "key_prefix",
    "storage_class",
    "restore_tier",
    "restore_days",
    "sse",
    "sse_kms_key_id",
    "small_file_threshold_bytes",
    "compact_deleted_share",
)


class TenantsConfigError(ValueError):
    """The tenants file cannot be used; the message names each problem."""


class TenantSettings(BaseModel):
    """One tenant's settings, complete (after fallback)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: StrictStr
    key_prefix: StrictStr = "archive"
    storage_class: Literal["DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD"] = "DEEP_ARCHIVE"
    restore_tier: StrictStr = "Bulk"
    restore_days: StrictInt = Field(default=7, ge=1, le=36500)
    sse: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: StrictStr | None = Field(default=None, min_length=1, max_length=2048)
    small_file_threshold_bytes: StrictInt = Field(default=1048576, ge=0)
    compact_deleted_share: float = Field(default=0.5, gt=0, le=1)  # a package this much deleted (by bytes) is due for repacking

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.match(value) or ".." in value:
            raise ValueError("must be an S3 bucket name: 3 to 63 characters from a-z, 0-9, '.' and '-'")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        if _CONTROL.search(value) or "\\" in value or any(part in ("", ".", "..") for part in value.split("/") if value):
            raise ValueError("must be a relative key prefix without control characters, backslashes, '.' or '..' segments")
        return value

    @field_validator("restore_tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        for tier in TIERS:
            if value.lower() == tier.lower():
                return tier
        raise ValueError(f"must be one of {', '.join(TIERS)}")

    @model_validator(mode="after")
    def _kms(self) -> "TenantSettings":
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ValueError("sse_kms_key_id is set but sse is not aws:kms")
        if self.restore_tier == "Expedited" and self.storage_class == "DEEP_ARCHIVE":
            raise ValueError("restore_tier Expedited is not available for DEEP_ARCHIVE")
        return self


@dataclass(frozen=True)
class TenantsConfig:
    """Settings per tenant: the file's tables over the defaults (the file's [defaults] over the environment)."""

    defaults: TenantSettings
    tenants: dict[str, TenantSettings] = field(default_factory=dict)
    source: str | None = None  # the file, when there is one
    # GLACIER_PACKAGE_TENANT_THRESHOLDS: used where the file sets no threshold for the tenant (nor in [defaults]).
    env_thresholds: dict[str, int] = field(default_factory=dict)
    # Which fields the file itself sets: "defaults" and each tenant name -> field names (for origin()).
    set_in_file: dict[str, frozenset[str]] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> TenantSettings:
        keys.validate_tenant(tenant)
        settings = self.tenants.get(tenant, self.defaults)
        in_file = any("small_file_threshold_bytes" in self.set_in_file.get(where, ()) for where in (tenant, "defaults"))
        if tenant in self.env_thresholds and not in_file:
            settings = settings.model_copy(update={"small_file_threshold_bytes": self.env_thresholds[tenant]})
        return settings

    def origin(self, tenant: str, name: str) -> str:
        """Where a tenant's setting comes from, in the words an operator fixes it with: the file's table and field, or the variable."""
        if name in self.set_in_file.get(tenant, ()):
            return f"{ENV_VAR} {self.source} [tenants.{tenant}] {name}"
        if name in self.set_in_file.get("defaults", ()):
            return f"{ENV_VAR} {self.source} [defaults] {name}"
        if name == "small_file_threshold_bytes" and tenant in self.env_thresholds:
            return "GLACIER_PACKAGE_TENANT_THRESHOLDS"
        return ENV_FALLBACK.get(name, f"the default {name}")

    def placement(self, tenant: str) -> tuple[str, str, str]:
        """(bucket, tenant prefix with its trailing slash, storage class): where the tenant's new bytes go, and the only
        place deduplication may point its requests at."""
        s = self.for_tenant(tenant)
        return s.bucket, keys.tenant_prefix(s.key_prefix, tenant), s.storage_class

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.tenants))


ENV_FALLBACK = {
    "bucket": "GLACIER_BUCKET",
    "key_prefix": "GLACIER_KEY_PREFIX",
    "storage_class": "GLACIER_STORAGE_CLASS",
    "sse": "GLACIER_SSE",
    "sse_kms_key_id": "GLACIER_SSE_KMS_KEY_ID",
    "small_file_threshold_bytes": "GLACIER_PACKAGE_THRESHOLD_BYTES",
    "compact_deleted_share": "GLACIER_COMPACT_DELETED_SHARE",
}


def env_thresholds(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """GLACIER_PACKAGE_TENANT_THRESHOLDS (``lab=65536,museum=2097152``) as a dict; a malformed pair is refused."""
    e = os.environ if environ is None else environ
    out: dict[str, int] = {}
    for item in filter(None, (x.strip() for x in e.get("GLACIER_PACKAGE_TENANT_THRESHOLDS", "").split(","))):
        tenant, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise TenantsConfigError(f"GLACIER_PACKAGE_TENANT_THRESHOLDS: {item!r} is not tenant=bytes")
        out[tenant.strip()] = int(value)
    return out


def defaults_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Today's variables as tenant settings (only those that are set)."""
    e = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, key in (
        ("GLACIER_BUCKET", "bucket"),
        ("GLACIER_KEY_PREFIX", "key_prefix"),
        ("GLACIER_STORAGE_CLASS", "storage_class"),
        ("GLACIER_SSE", "sse"),
        ("GLACIER_SSE_KMS_KEY_ID", "sse_kms_key_id"),
    ):
        if e.get(name, "").strip():
            out[key] = e[name].strip()
    if "sse" in out:  # spelled as settings.py accepts it (aes256, AWS:KMS)
        out["sse"] = {"aes256": "AES256", "aws:kms": "aws:kms"}.get(out["sse"].lower(), out["sse"])
    if "storage_class" in out:
        out["storage_class"] = out["storage_class"].upper()
    if out.get("sse", "").lower() != "aws:kms":
        out.pop("sse_kms_key_id", None)  # a key id without SSE-KMS is not used (as GLACIER_SSE_KMS_KEY_ID alone is ignored)
    if e.get("GLACIER_PACKAGE_THRESHOLD_BYTES", "").strip():
        try:
            out["small_file_threshold_bytes"] = int(e["GLACIER_PACKAGE_THRESHOLD_BYTES"])
        except ValueError:
            raise TenantsConfigError("GLACIER_PACKAGE_THRESHOLD_BYTES: must be a whole number of bytes") from None
    if e.get("GLACIER_COMPACT_DELETED_SHARE", "").strip():
        try:
            out["compact_deleted_share"] = float(e["GLACIER_COMPACT_DELETED_SHARE"])
        except ValueError:
            raise TenantsConfigError("GLACIER_COMPACT_DELETED_SHARE: must be a number above 0 and at most 1") from None
    out.setdefault("bucket", "glacier-archive")
    return out


def _problems(exc: ValidationError, where: str) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "credentials do not belong in this file (use the AWS credential chain)" if _SECRET_LIKE.search(loc) else "unknown field"
        out.append(f"{where}{'.' + loc if loc else ''}: {msg}")
    return out


def _layered(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers over earlier ones; a layer that sets ``sse`` without a key id does not inherit one (SSE-S3 has none)."""
    out: dict[str, Any] = {}
    for layer in layers:
        if "sse" in layer and "sse_kms_key_id" not in layer:
            out.pop("sse_kms_key_id", None)
        out.update(layer)
    return out


def parse_tenants_config(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, source: str = "tenants config"
) -> TenantsConfig:
    """Validate a parsed TOML document; every problem is reported at once."""
    problems: list[str] = []
    unknown = sorted(set(data) - {"defaults", "tenants"})
    problems += [f"{source}: [{name}]: unknown table (expected [defaults] and [tenants.NAME])" for name in unknown]
    base = defaults_from_env(environ)
    raw_defaults = data.get("defaults", {})
    raw_tenants = data.get("tenants", {})
    if not isinstance(raw_defaults, Mapping):
        problems.append(f"{source}: defaults: must be a table")
        raw_defaults = {}
    if not isinstance(raw_tenants, Mapping):
        problems.append(f"{source}: tenants: must be a table of [tenants.NAME] tables")
        raw_tenants = {}
    defaults = None
    try:
        defaults = TenantSettings.model_validate(_layered(base, raw_defaults))
    except ValidationError as exc:
        problems += _problems(exc, f"{source}: [defaults]")
    tenants: dict[str, TenantSettings] = {}
    for name, table in raw_tenants.items():
        where = f"{source}: [tenants.{name}]"
        try:
            keys.validate_tenant(name)
        except ValueError as exc:
            problems.append(f"{where}: not a valid tenant name ({exc})")
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        try:
            tenants[name] = TenantSettings.model_validate(_layered(base, raw_defaults, table))
        except ValidationError as exc:
            problems += _problems(exc, where)
    if problems or defaults is None:
        raise TenantsConfigError("; ".join(problems) or f"{source}: invalid")
    set_in_file = {"defaults": frozenset(raw_defaults)} | {
        name: frozenset(table) for name, table in raw_tenants.items() if isinstance(table, Mapping)
    }
    return TenantsConfig(defaults=defaults, tenants=tenants, source=source, env_thresholds=env_thresholds(environ), set_in_file=set_in_file)


def load_tenants_config(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> TenantsConfig:
    """The file ``path`` (default: ``$GLACIER_TENANTS_CONFIG``); without one, every tenant gets today's variables."""
    e = os.environ if environ is None else environ
    path = path if path is not None else (e.get(ENV_VAR, "").strip() or None)
    if path is None:
        try:
            defaults = TenantSettings.model_validate(defaults_from_env(e))
        except ValidationError as exc:
            raise TenantsConfigError("; ".join(_problems(exc, "the GLACIER_* variables"))) from None
        return TenantsConfig(defaults=defaults, env_thresholds=env_thresholds(e))
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TenantsConfigError(f"{ENV_VAR}: {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TenantsConfigError(f"{ENV_VAR}: {p} cannot be read: {type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TenantsConfigError(f"{ENV_VAR}: {p} is not valid TOML: {exc}") from None
    return parse_tenants_config(data, environ=e, source=str(p))
