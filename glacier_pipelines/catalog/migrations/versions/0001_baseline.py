"""Baseline: the catalog schema as the releases before Alembic made it (every table of catalog/tables.py and catalog/vault_tables.py).

On an empty database it creates every table. On a catalog made before migrations existed (tables, no
``alembic_version``), it adopts what is there and adds only what is missing: tables, nullable columns
and indexes that later releases added before this baseline (``create_all`` never added them).

The tables are frozen here, not imported: later revisions change the schema, this one never does.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# (index name, table, columns, unique)
INDEXES = [
    ("ix_batches_run", "batches", ["run_id"], False),
    ("ix_batches_tenant", "batches", ["tenant"], False),
    ("ix_objects_tenant", "objects", ["tenant"], False),
    ("ix_responses_unpublished", "responses", ["published_at"], False),
    ("ix_vault_archives_vault_created", "vault_archives", ["vault", "creation_date"], False),
    ("ix_vault_archives_vault_status", "vault_archives", ["vault", "status"], False),
    ("ix_vault_jobs_kind_initiated", "vault_jobs", ["kind", "initiated_at"], False),
    ("ix_vault_jobs_status", "vault_jobs", ["status", "checked_at"], False),
    ("ix_vault_jobs_vault_kind", "vault_jobs", ["vault", "kind", "initiated_at"], False),
    ("ix_vault_progress_vault", "vault_progress", ["vault", "recorded_at"], False),
    ("ix_moves_tenant_status", "moves", ["tenant", "status"], False),
    ("ix_object_checksums_lookup", "object_checksums", ["algorithm", "checksum"], False),
    ("ix_packages_tenant_state", "packages", ["tenant", "state"], False),
    ("ix_requests_batch", "requests", ["batch_id"], False),
    ("ix_requests_content", "requests", ["tenant", "algorithm", "checksum"], False),
    ("ix_requests_tenant_status", "requests", ["tenant", "status"], False),
    ("ix_restores_restore_id", "restores", ["restore_id"], False),
    ("ix_restores_tenant_status", "restores", ["tenant", "status"], False),
    ("ix_package_members_package", "package_members", ["package_id"], False),
    ("ix_package_members_sha256", "package_members", ["tenant", "sha256"], False),
]


def baseline() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "batches",
        md,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "objects",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("storage_class", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("s3_checksum", sa.String(length=64), nullable=False),
        sa.Column("etag", sa.String(length=128), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket", "key", name="uq_objects_bucket_key"),
    )
    sa.Table(
        "responses",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "request_id", "status", name="uq_responses_tenant_request_status"),
    )
    sa.Table(
        "vault_archives",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vault", sa.String(length=255), nullable=False),
        sa.Column("archive_id", sa.String(length=1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tree_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("naming_reason", sa.String(length=16), nullable=False),
        sa.Column("destination_key", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("inventory_job_id", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("job_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jobs_started", sa.Integer(), nullable=False),
        sa.Column("job_failures", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.String(length=1024), nullable=True),
        sa.Column("chunk_size", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=True),
        sa.Column("etag", sa.String(length=128), nullable=True),
        sa.Column("s3_checksum", sa.String(length=80), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vault", "archive_id", name="uq_vault_archives_vault_archive"),
    )
    sa.Table(
        "vault_jobs",
        md,
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("vault", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("archive_id", sa.String(length=1024), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("initiated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message", sa.String(length=2000), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("job_id"),
    )
    sa.Table(
        "vault_progress",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vault", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archives_total", sa.Integer(), nullable=False),
        sa.Column("archives_done", sa.Integer(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_failed", sa.BigInteger(), nullable=False),
        sa.Column("bytes_skipped", sa.BigInteger(), nullable=False),
        sa.Column("bytes_transferred", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "bad_locations",
        md,
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(length=1024), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("object_id", "member"),
    )
    sa.Table(
        "moves",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("source_key", sa.String(length=1024), nullable=False),
        sa.Column("dest_bucket", sa.String(length=255), nullable=False),
        sa.Column("dest_key", sa.String(length=1024), nullable=False),
        sa.Column("storage_class", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("verification", sa.String(length=16), nullable=False),
        sa.Column("source_etag", sa.String(length=128), nullable=True),
        sa.Column("source_class", sa.String(length=32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("s3_checksum", sa.String(length=64), nullable=True),
        sa.Column("checksum_algorithm", sa.String(length=32), nullable=True),
        sa.Column("verified_against", sa.JSON(), nullable=True),
        sa.Column("checksums", sa.JSON(), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identity", name="uq_moves_identity"),
    )
    sa.Table(
        "object_checksums",
        md,
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("checksum", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("object_id", "algorithm"),
    )
    sa.Table(
        "object_restores",
        md,
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("poll_attempts", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=True),
        sa.Column("verify_message", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("object_id"),
    )
    sa.Table(
        "packages",
        md,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("member_bytes", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("manifest_key", sa.String(length=1024), nullable=True),
        sa.Column("verify_problems", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "requests",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("session", sa.String(length=255), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=True),
        sa.Column("checksum", sa.String(length=128), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("deduplicated", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("stage", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "request_id", name="uq_requests_tenant_request"),
    )
    sa.Table(
        "restores",
        md,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("restore_id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("selector", sa.String(length=2100), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("member", sa.JSON(), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("requester", sa.String(length=320), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("download_url", sa.Text(), nullable=True),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=True),
        sa.Column("cost", sa.JSON(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "vault_parts",
        md,
        sa.Column("archive_pk", sa.Integer(), nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.String(length=1024), nullable=False),
        sa.Column("etag", sa.String(length=128), nullable=False),
        sa.Column("checksum_sha256", sa.String(length=64), nullable=False),
        sa.Column("tree_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["archive_pk"],
            ["vault_archives.id"],
        ),
        sa.PrimaryKeyConstraint("archive_pk", "part_number"),
    )
    sa.Table(
        "package_members",
        md,
        sa.Column("request_pk", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("staged_path", sa.String(length=2048), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_pk"],
            ["requests.id"],
        ),
        sa.PrimaryKeyConstraint("request_pk"),
    )
    for name, table, columns, unique in INDEXES:
        sa.Index(name, *(md.tables[table].c[c] for c in columns), unique=unique)
    return md


def upgrade() -> None:
    bind = op.get_bind()
    md = baseline()
    inspector = sa.inspect(bind)
    have = set(inspector.get_table_names())
    for table in md.sorted_tables:
        if table.name not in have:
            table.create(bind)
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
        indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(baseline().sorted_tables):
        table.drop(bind, checkfirst=True)
