"""Tables of deletion, restoration and availability requests, and their statuses.

``worker_requests`` holds one row per request, its status and, for a restoration, the restore it
rides on; ``deletions`` records what was deleted, for audits: the storage requests and the
objects whose bytes left S3, with their digests and the early-deletion charge. The tables join the
catalog's shared ``tables.metadata``; they live apart from their queries so that ``schema.py``
can create them without importing the stores.
"""

from __future__ import annotations

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t

DELETED = "DELETED"  # a storage request whose file was deleted on request (terminal)
# Worker request statuses: PENDING (recorded), SUBMITTED (a restoration whose restore was recorded),
# DELAYED (its restore started and DELAYED was answered), then SUCCESS or ERROR.
PENDING, SUBMITTED, DELAYED, SUCCESS, ERROR = "PENDING", "SUBMITTED", "DELAYED", "SUCCESS", "ERROR"
OPEN = (PENDING, SUBMITTED, DELAYED)
NOT_LIVE = (DELETED, t.ERROR, t.INVALID_CONTENT)  # request statuses that no longer hold a reference to bytes

worker_requests = sa.Table(
    "worker_requests",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # DELETION, RESTORATION, AVAILABILITY
    sa.Column("owner", sa.String(255)),
    sa.Column("session", sa.String(255)),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("restore_id", sa.String(36)),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("tenant", "request_id", name="uq_worker_requests_tenant_request"),
    sa.Index("ix_worker_requests_kind_status", "kind", "status"),
)

deletions = sa.Table(
    "deletions",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("deletion_request_id", sa.String(255), nullable=False),
    sa.Column("what", sa.String(8), nullable=False),  # REQUEST (a reference) or OBJECT (bytes removed from S3)
    sa.Column("storage_request_id", sa.String(255)),
    sa.Column("url", sa.String(2100), nullable=False),
    sa.Column("storage_class", sa.String(32)),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("checksums", sa.JSON),
    sa.Column("stored_at", sa.DateTime(timezone=True)),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("early_deletion_charge_usd", sa.Float),
    sa.Index("ix_deletions_tenant_url", "tenant", "url"),
)
