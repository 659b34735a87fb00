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

By concern: ``config`` (the file as pydantic models, checked against the deployment), ``rules``
(the declaration as applied, per tenant) and ``plan`` (merging with what a bucket holds, the diff).
"""

from glacier_pipelines.core.lifecycle.config import (
    MAX_RULES_PER_BUCKET,
    MIN_DAYS_IN_CLASS,
    WATERFALL,
    LifecycleConfigError,
    LifecycleFile,
    load_config,
    parse_config,
    parse_s3_url,
)
from glacier_pipelines.core.lifecycle.plan import LifecyclePlan, canonical, describe, markdown, merge
from glacier_pipelines.core.lifecycle.rules import (
    DEFAULT_TRASH_PREFIX,
    RESTORED_COPIES_RULE_ID,
    RESTORED_COPY_EXPIRY_DAYS,
    RESTORED_COPY_TAG,
    RESTORED_DIR,
    RULE_ID_PREFIX,
    LifecycleConfig,
    Rule,
    Source,
    TenantLifecycle,
    Transition,
    is_project_rule,
    restored_copies_rule,
    restored_copies_rule_id,
    rule_id,
)

__all__ = [
    "DEFAULT_TRASH_PREFIX",
    "MAX_RULES_PER_BUCKET",
    "MIN_DAYS_IN_CLASS",
    "RESTORED_COPIES_RULE_ID",
    "RESTORED_COPY_EXPIRY_DAYS",
    "RESTORED_COPY_TAG",
    "RESTORED_DIR",
    "RULE_ID_PREFIX",
    "WATERFALL",
    "LifecycleConfig",
    "LifecycleConfigError",
    "LifecycleFile",
    "LifecyclePlan",
    "Rule",
    "Source",
    "TenantLifecycle",
    "Transition",
    "canonical",
    "describe",
    "is_project_rule",
    "load_config",
    "markdown",
    "merge",
    "parse_config",
    "parse_s3_url",
    "restored_copies_rule",
    "restored_copies_rule_id",
    "rule_id",
]
