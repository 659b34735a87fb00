"""Deletion, restoration and availability requests (worker_requests) and the record of deletions (deletions).

Frozen here like the baseline: later revisions change the schema, this one never does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_worker_requests"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def tables() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "worker_requests",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("session", sa.String(length=255), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("restore_id", sa.String(length=36), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "request_id", name="uq_worker_requests_tenant_request"),
        sa.Index("ix_worker_requests_kind_status", "kind", "status"),
    )
    sa.Table(
        "deletions",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("deletion_request_id", sa.String(length=255), nullable=False),
        sa.Column("what", sa.String(length=8), nullable=False),
        sa.Column("storage_request_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.String(length=2100), nullable=False),
        sa.Column("storage_class", sa.String(length=32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("checksums", sa.JSON(), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("early_deletion_charge_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_deletions_tenant_url", "tenant", "url"),
    )
    return md


def upgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    for table in tables().sorted_tables:
        if table.name not in have:  # a catalog that made them on first use, before this revision existed
            table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(tables().sorted_tables):
        table.drop(bind, checkfirst=True)
