"""The operators' trash with a grace period (trash), old storedFileUrls of compacted packages' members (url_aliases), and
package compactions (compactions).

Frozen here like the baseline: later revisions change the schema, this one never does.

Revision ID: 0004_tenant_storage
Revises: 0003_claims
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_tenant_storage"
down_revision = "0003_claims"
branch_labels = None
depends_on = None


def tables() -> sa.MetaData:
    md = sa.MetaData()
    # Stand-ins for the tables the foreign keys point at (already there: created by earlier revisions, never by this one).
    sa.Table("requests", md, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table("objects", md, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table(
        "trash",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("request_pk", sa.Integer(), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("objects.id"), nullable=True),
        sa.Column("member", sa.String(length=1024), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("withdrawn", sa.JSON(), nullable=True),
        sa.Column("original_key", sa.String(length=1024), nullable=True),
        sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_trash_tenant_state", "tenant", "state"),
        sa.Index("ix_trash_state_deadline", "state", "deadline"),
        sa.Index("ix_trash_request", "request_pk"),
    )
    sa.Table(
        "url_aliases",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("old_url", sa.String(length=2100), nullable=False),
        sa.Column("new_url", sa.String(length=2100), nullable=False),
        sa.Column("request_pk", sa.Integer(), sa.ForeignKey("requests.id"), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_url_aliases_tenant_old", "tenant", "old_url"),
    )
    sa.Table(
        "compactions",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("old_package_id", sa.String(length=36), nullable=False),
        sa.Column("new_package_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("old_url", sa.String(length=2100), nullable=False),
        sa.Column("new_url", sa.String(length=2100), nullable=True),
        sa.Column("deleted_share", sa.Float(), nullable=False),
        sa.Column("live_members", sa.Integer(), nullable=True),
        sa.Column("bytes_before", sa.BigInteger(), nullable=True),
        sa.Column("bytes_after", sa.BigInteger(), nullable=True),
        sa.Column("early_deletion_charge_usd", sa.Float(), nullable=True),
        sa.Column("restore_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("old_package_id", name="uq_compactions_old_package"),
        sa.Index("ix_compactions_tenant_state", "tenant", "state"),
    )
    return md


NEW = ("trash", "url_aliases", "compactions")


def upgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    for table in tables().sorted_tables:
        if table.name in NEW and table.name not in have:
            table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(tables().sorted_tables):
        if table.name in NEW:
            table.drop(bind, checkfirst=True)
