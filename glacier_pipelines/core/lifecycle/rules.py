"""The declaration as applied: each tenant's rules with their absolute scope, its sources and trash, and S3's form of a rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from glacier_pipelines.core import keys
from glacier_pipelines.core.restores import SIGV4_MAX_SECONDS

RULE_ID_PREFIX = "glacier-pipelines:"
DEFAULT_TRASH_PREFIX = "trash/"

# Restored package members are copied (STANDARD, tagged) under <tenant prefix>/restored/<restore id>/ for their
# download links; restore_expiry deletes each copy when its link lapses. The backstop, one rule per archive bucket,
# expires any copy left behind a day after the longest a link can live (SigV4's 7 days).
RESTORED_DIR = "restored"
RESTORED_COPY_TAG = ("glacier-pipelines", "restored-copy")
RESTORED_COPIES_RULE_ID = f"{RULE_ID_PREFIX}restored-copies"  # one colon: never a <tenant>:<name> id
RESTORED_COPY_EXPIRY_DAYS = SIGV4_MAX_SECONDS // 86400 + 1


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
    # GLACIER_TENANTS_CONFIG: tenant -> (bucket, key prefix) where it archives, when not the global bucket and prefix above.
    placements: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def placement(self, tenant: str) -> tuple[str, str]:
        """(bucket, key prefix) of the tenant's archive: its own from the tenants file, else the global ones."""
        return self.placements.get(tenant, (self.bucket, self.key_prefix))

    def tenant(self, tenant: str) -> TenantLifecycle:
        if tenant in self.tenants:
            return self.tenants[tenant]
        return TenantLifecycle(tenant=tenant, own_prefix=keys.tenant_prefix(self.placement(tenant)[1], tenant))

    def rules(self) -> list[Rule]:
        return [rule for t in self.tenants.values() for rule in t.rules]

    def archives(self) -> set[tuple[str, str]]:
        """Every (bucket, key prefix) an archive lives in: the global one and each tenant's own."""
        return {(self.bucket, self.key_prefix)} | set(self.placements.values())

    def buckets(self) -> list[str]:
        """Buckets whose project rules this declaration governs: every archive bucket, and every bucket a rule names."""
        return sorted({b for b, _ in self.archives()} | {rule.bucket for rule in self.rules()})

    def desired(self, bucket: str) -> list[dict[str, Any]]:
        """The declared rules for ``bucket``, as S3 takes them."""
        return [rule.to_s3() for rule in sorted(self.rules(), key=lambda r: r.id) if rule.bucket == bucket]

    def project_rules(self, bucket: str) -> list[dict[str, Any]]:
        """Every project rule ``bucket`` must hold: the declared ones, and on an archive bucket the restored-copies backstop of
        each archive prefix it holds (the global prefix, or a bucket's only prefix, keeps the plain backstop id)."""
        prefixes = sorted(p for b, p in self.archives() if b == bucket)
        plain = self.key_prefix if bucket == self.bucket else (prefixes[0] if len(prefixes) == 1 else None)
        backstops = [restored_copies_rule(p, None if p == plain else restored_copies_rule_id(p)) for p in prefixes]
        return self.desired(bucket) + backstops


def restored_copies_rule_id(key_prefix: str) -> str:
    """The backstop's id for a second archive prefix in one bucket (S3 refuses two rules with one id)."""
    return f"{RESTORED_COPIES_RULE_ID}/{key_prefix.strip('/')}"


def restored_copies_rule(key_prefix: str, rule_id: str | None = None) -> dict[str, Any]:
    """The backstop: tagged restored copies under the archive prefix expire after RESTORED_COPY_EXPIRY_DAYS."""
    tag = {"Key": RESTORED_COPY_TAG[0], "Value": RESTORED_COPY_TAG[1]}
    prefix = f"{key_prefix.strip('/')}/" if key_prefix.strip("/") else ""
    return {
        "ID": rule_id or RESTORED_COPIES_RULE_ID,
        "Filter": {"And": {"Prefix": prefix, "Tags": [tag]}} if prefix else {"Tag": tag},
        "Status": "Enabled",
        "Expiration": {"Days": RESTORED_COPY_EXPIRY_DAYS},
    }


def rule_id(tenant: str, name: str) -> str:
    return f"{RULE_ID_PREFIX}{tenant}:{name}"


def is_project_rule(rule: Mapping[str, Any]) -> bool:
    return str(rule.get("ID") or "").startswith(RULE_ID_PREFIX)
