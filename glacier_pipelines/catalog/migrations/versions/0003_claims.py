"""Claims of objects by runs (claims), which run copied a moved object and whether the move ledger holds it
(moves.copied_by, moves.ledger_key), which run sent an object's RestoreObject (object_restores.requested_by), and the
status the vault ledger last recorded for an archive (vault_archives.ledgered_status).

Frozen here like the baseline: later revisions change the schema, this one never does.

Revision ID: 0003_claims
Revises: 0002_worker_requests
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_claims"
down_revision = "0002_worker_requests"
branch_labels = None
depends_on = None

# (table, column) added by this revision; all nullable, so rows already there need nothing.
COLUMNS = [
    ("moves", "copied_by", 64),
    ("moves", "ledger_key", 1024),
    ("object_restores", "requested_by", 64),
    ("vault_archives", "ledgered_status", 16),
]


def tables() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "claims",
        md,
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=2000), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimant", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key"),
        sa.Index("ix_claims_run_state", "claimed_by", "state"),
    )
    return md


def upgrade() -> None:
    bind = op.get_bind()
    insp = sa.inspect(bind)
    have = set(insp.get_table_names())
    for table in tables().sorted_tables:
        if table.name not in have:
            table.create(bind)
    for table_name, name, length in COLUMNS:
        if name not in {c["name"] for c in insp.get_columns(table_name)}:
            op.add_column(table_name, sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    for table_name, name, _ in reversed(COLUMNS):
        with op.batch_alter_table(table_name) as batch:
            batch.drop_column(name)
    for table in reversed(tables().sorted_tables):
        table.drop(bind, checkfirst=True)
