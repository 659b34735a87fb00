"""Catalog tables of vault copies (archives of a Glacier vault, the jobs retrieving them, uploaded parts, progress) and
their statuses.

The tables live on the catalog's shared ``tables.metadata``; ``VaultStore`` (catalog/vaults.py) creates them
the first time it meets an engine, so a ``Catalog`` made before this module was imported works too.

One row of ``vault_archives`` per archive of a vault, moving through::

    NEW -> REQUESTED (retrieval job started) -> STAGED (job output ready) -> TRANSFERRING -> DONE
                                                                                        \\-> FAILED
    NEW -> SKIPPED (cannot be one S3 object)

An archive whose job output expired goes back to NEW (its open multipart upload and recorded
parts are kept: a new job returns the same bytes).
"""

from __future__ import annotations

import sqlalchemy as sa

from glacier_pipelines.catalog import tables

metadata = tables.metadata

# Archive statuses.
NEW, REQUESTED, STAGED, TRANSFERRING = "NEW", "REQUESTED", "STAGED", "TRANSFERRING"
DONE, FAILED, SKIPPED = "DONE", "FAILED", "SKIPPED"
PENDING = (NEW, REQUESTED, STAGED, TRANSFERRING)
TERMINAL = (DONE, FAILED, SKIPPED)
STATUSES = PENDING + TERMINAL

# Job kinds and statuses (Glacier's StatusCode, plus Expired: DescribeJob answered 404).
INVENTORY, ARCHIVE = "inventory", "archive"
IN_PROGRESS, SUCCEEDED, JOB_FAILED, EXPIRED = "InProgress", "Succeeded", "Failed", "Expired"

vault_archives = sa.Table(
    "vault_archives",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("vault", sa.String(255), nullable=False),
    sa.Column("archive_id", sa.String(1024), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tree_hash", sa.String(64), nullable=False),  # SHA256TreeHash from the inventory: the reference
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("naming_reason", sa.String(16), nullable=False),
    sa.Column("destination_key", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("inventory_job_id", sa.String(255)),
    sa.Column("job_id", sa.String(255)),  # the current archive-retrieval job
    sa.Column("job_started_at", sa.DateTime(timezone=True)),
    sa.Column("job_completed_at", sa.DateTime(timezone=True)),
    sa.Column("jobs_started", sa.Integer, nullable=False, default=0),
    sa.Column("job_failures", sa.Integer, nullable=False, default=0),
    sa.Column("upload_id", sa.String(1024)),  # the open multipart upload
    sa.Column("chunk_size", sa.BigInteger),  # fixed when the upload starts: part k+1 is chunk k
    sa.Column("attempts", sa.Integer, nullable=False, default=0),  # interrupted transfer attempts
    sa.Column("bucket", sa.String(255)),
    sa.Column("etag", sa.String(128)),
    sa.Column("s3_checksum", sa.String(80)),
    sa.Column("done_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64)),
    # The status the vault ledger (flows/vault/ledger.py) last recorded in S3; null: the archive is not in it yet.
    sa.Column("ledgered_status", sa.String(16)),
    sa.UniqueConstraint("vault", "archive_id", name="uq_vault_archives_vault_archive"),
    sa.Index("ix_vault_archives_vault_status", "vault", "status"),
    sa.Index("ix_vault_archives_vault_created", "vault", "creation_date"),
)

vault_jobs = sa.Table(
    "vault_jobs",
    metadata,
    sa.Column("job_id", sa.String(255), primary_key=True),
    sa.Column("vault", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # inventory, archive
    sa.Column("archive_id", sa.String(1024)),
    sa.Column("tier", sa.String(16)),
    sa.Column("format", sa.String(8)),
    sa.Column("bytes", sa.BigInteger, nullable=False, default=0),  # what the daily quota counts
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("initiated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("checked_at", sa.DateTime(timezone=True)),
    sa.Column("message", sa.String(2000)),
    sa.Column("loaded_at", sa.DateTime(timezone=True)),  # inventory: output parsed into vault_archives
    sa.Column("result", sa.JSON),  # inventory: summary of what was loaded
    sa.Column("run_id", sa.String(64)),
    sa.Index("ix_vault_jobs_status", "status", "checked_at"),
    sa.Index("ix_vault_jobs_vault_kind", "vault", "kind", "initiated_at"),
    sa.Index("ix_vault_jobs_kind_initiated", "kind", "initiated_at"),
)

vault_parts = sa.Table(
    "vault_parts",
    metadata,
    sa.Column("archive_pk", sa.Integer, sa.ForeignKey("vault_archives.id"), primary_key=True),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("upload_id", sa.String(1024), nullable=False),
    sa.Column("etag", sa.String(128), nullable=False),
    sa.Column("checksum_sha256", sa.String(64), nullable=False),  # base64, as S3 wants it back
    sa.Column("tree_hash", sa.String(64), nullable=False),  # root of the chunk, checked against Glacier's header
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)

vault_progress = sa.Table(
    "vault_progress",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("vault", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("archives_total", sa.Integer, nullable=False),
    sa.Column("archives_done", sa.Integer, nullable=False),
    sa.Column("bytes_total", sa.BigInteger, nullable=False),
    sa.Column("bytes_done", sa.BigInteger, nullable=False),
    sa.Column("bytes_failed", sa.BigInteger, nullable=False),
    sa.Column("bytes_skipped", sa.BigInteger, nullable=False),
    sa.Column("bytes_transferred", sa.BigInteger, nullable=False),  # moved by the step that recorded this row
    sa.Index("ix_vault_progress_vault", "vault", "recorded_at"),
)
