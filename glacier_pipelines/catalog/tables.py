"""SQLAlchemy tables of the catalog (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Request statuses. PENDING/CLAIMED/VERIFIED/STORED are in flight, DELAYED waits in a package
# (open and durably staged, or stored and waiting for package_integrity); the rest are terminal.
# STORED: the bytes are in S3 and the answer waits for the blocking check that covers the object
# (checksum_integrity), so nobody is told SUCCESS about bytes that fail it.
PENDING, CLAIMED, VERIFIED, STORED, DELAYED = "PENDING", "CLAIMED", "VERIFIED", "STORED", "DELAYED"
SUCCESS, ERROR, INVALID_CONTENT = "SUCCESS", "ERROR", "INVALID_CONTENT"
TERMINAL = (SUCCESS, ERROR, INVALID_CONTENT)
IN_FLIGHT = (PENDING, CLAIMED, VERIFIED, STORED)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(255)),
    sa.Column("session", sa.String(255)),
    sa.Column("body", sa.JSON),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("algorithm", sa.String(16)),
    sa.Column("checksum", sa.String(128)),
    sa.Column("batch_id", sa.String(36), sa.ForeignKey("batches.id")),
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id")),
    sa.Column("deduplicated", sa.Boolean, nullable=False, default=False),
    sa.Column("size", sa.BigInteger),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    # Where verified bytes wait for glacier_objects: a staged file or an open multipart upload.
    sa.Column("stage", sa.JSON),
    sa.Column("run_id", sa.String(64)),
    sa.UniqueConstraint("tenant", "request_id", name="uq_requests_tenant_request"),
    sa.Index("ix_requests_tenant_status", "tenant", "status"),
    sa.Index("ix_requests_batch", "batch_id"),
    sa.Index("ix_requests_content", "tenant", "algorithm", "checksum"),  # dedupe by the announced checksum
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_count", sa.Integer, nullable=False),
    sa.Index("ix_batches_run", "run_id"),
    sa.Index("ix_batches_tenant", "tenant"),
)

objects = sa.Table(
    "objects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("bucket", sa.String(255), nullable=False),
    sa.Column("key", sa.String(1024), nullable=False),
    sa.Column("storage_class", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    # What S3 reports with ChecksumMode=ENABLED: full-object base64 SHA-256, or the "...-N" composite.
    sa.Column("s3_checksum", sa.String(64), nullable=False),
    sa.Column("etag", sa.String(128)),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("batch_id", sa.String(36)),
    sa.UniqueConstraint("bucket", "key", name="uq_objects_bucket_key"),
    sa.Index("ix_objects_tenant", "tenant"),
)

# Every digest known for an object, so a request in any algorithm can find stored content.
object_checksums = sa.Table(
    "object_checksums",
    metadata,
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id"), primary_key=True),
    sa.Column("algorithm", sa.String(16), primary_key=True),
    sa.Column("checksum", sa.String(128), nullable=False),
    sa.Index("ix_object_checksums_lookup", "algorithm", "checksum"),
)

# Locations found missing or corrupt when read: never offered again for dedupe or restore,
# so another location of the same content is used (or the content is stored anew).
bad_locations = sa.Table(
    "bad_locations",
    metadata,
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id"), primary_key=True),
    sa.Column("member", sa.String(1024), primary_key=True),  # '' flags the whole object
    sa.Column("reason", sa.String(2000), nullable=False),
    sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
)

# The outbox: one terminal response per request, recorded with the status, published later.
responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    # One response per status: a packaged file answers DELAYED, then its terminal SUCCESS or ERROR.
    sa.UniqueConstraint("tenant", "request_id", "status", name="uq_responses_tenant_request_status"),
    sa.Index("ix_responses_unpublished", "published_at"),
)

# One row per file asked back by one restore request. Rows of one object share its restore.
restores = sa.Table(
    "restores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("restore_id", sa.String(36), nullable=False),  # the request: several files share it
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("selector", sa.String(2100), nullable=False),  # how the file was named, for the report
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id")),
    sa.Column("request_id", sa.String(255)),
    sa.Column("member", sa.JSON),  # {name, offset, length, sha256} when the file is a package member
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("requester", sa.String(320), nullable=False),
    sa.Column("note", sa.String(2000)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ready_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("download_url", sa.Text),  # a pre-signed URL: shown to the requester, never logged
    sa.Column("estimated_cost_usd", sa.Float),
    sa.Column("cost", sa.JSON),
    sa.Column("notified_at", sa.DateTime(timezone=True)),
    sa.Column("run_id", sa.String(64)),
    sa.Index("ix_restores_tenant_status", "tenant", "status"),
    sa.Index("ix_restores_restore_id", "restore_id"),
)

# The state of each object's restore in S3 (one RestoreObject per object, however many ask).
object_restores = sa.Table(
    "object_restores",
    metadata,
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # REQUESTED, RESTORED, EXPIRED, FAILED
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("restored_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("next_poll_at", sa.DateTime(timezone=True)),
    sa.Column("poll_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("verified", sa.Boolean),  # restored bytes re-hashed and compared with the catalog
    sa.Column("verify_message", sa.String(2000)),
    sa.Column("requested_by", sa.String(64)),  # the run that sent the RestoreObject
)

# Small-file packages: one tar object per package, members at fixed offsets.
packages = sa.Table(
    "packages",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # OPEN, CLOSING (run_id closing it), STORED, FAILED
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("member_bytes", sa.BigInteger, nullable=False, default=0),
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id")),
    sa.Column("manifest_key", sa.String(1024)),
    sa.Column("verify_problems", sa.JSON),
    sa.Column("run_id", sa.String(64)),
    sa.Index("ix_packages_tenant_state", "tenant", "state"),
)

package_members = sa.Table(
    "package_members",
    metadata,
    sa.Column("request_pk", sa.Integer, sa.ForeignKey("requests.id"), primary_key=True),
    sa.Column("package_id", sa.String(36), sa.ForeignKey("packages.id"), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("staged_path", sa.String(2048)),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("offset", sa.BigInteger),  # set when the package is built
    sa.Column("length", sa.BigInteger),
    sa.Index("ix_package_members_package", "package_id"),
    sa.Index("ix_package_members_sha256", "tenant", "sha256"),
)

# Server-side moves into a storage class (and soft deletes into the tenant's trash), one row per
# source object and destination: the progress that makes a prefix move resumable and never
# copies an object twice, and the audit of how each copy was verified.
moves = sa.Table(
    "moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # MOVE or TRASH
    sa.Column("bucket", sa.String(255), nullable=False),
    sa.Column("source_key", sa.String(1024), nullable=False),
    sa.Column("dest_bucket", sa.String(255), nullable=False),
    sa.Column("dest_key", sa.String(1024), nullable=False),
    sa.Column("storage_class", sa.String(32), nullable=False),  # the target class
    sa.Column("status", sa.String(16), nullable=False),  # COPYING, COPIED, DONE, SKIPPED, FAILED
    sa.Column("verification", sa.String(16), nullable=False),  # trust-s3 or stream
    sa.Column("source_etag", sa.String(128)),
    sa.Column("source_class", sa.String(32)),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),  # hex, when known (streamed, or S3's full-object SHA-256)
    sa.Column("s3_checksum", sa.String(64)),  # S3's checksum of the copy
    sa.Column("checksum_algorithm", sa.String(32)),  # e.g. SHA256 (FULL_OBJECT), SHA256 (COMPOSITE) or CRC32 (COMPOSITE)
    sa.Column("verified_against", sa.JSON),  # [{"reference", "algorithm", "checksum"}] compared and matched
    sa.Column("checksums", sa.JSON),  # a trashed object's catalog digests, kept out of content lookups
    sa.Column("parts", sa.Integer),  # 0 for CopyObject, else the UploadPartCopy parts
    sa.Column("request_id", sa.String(255)),  # the storage request a TRASH row soft-deletes
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id")),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # SHA-256 of (kind, source, destination, request): a unique key short enough for any index.
    sa.Column("identity", sa.String(64), nullable=False),
    # The run that made the copy (null when none was made: found in place); reports say "copied by run X" with it.
    sa.Column("copied_by", sa.String(64)),
    # The ledger object (core/ledger.py) holding the row as it is now; null until written, again after any change.
    sa.Column("ledger_key", sa.String(1024)),
    sa.UniqueConstraint("identity", name="uq_moves_identity"),
    sa.Index("ix_moves_tenant_status", "tenant", "status"),
)

# One row per object some run works on (a move's source, a vault archive, an object's restore): the run holding it,
# claimed by an atomic conditional insert or update (catalog/claims.py), so concurrent runs act on each object once.
claims = sa.Table(
    "claims",
    metadata,
    sa.Column("scope", sa.String(24), primary_key=True),  # move, vault-archive, vault-inventory, restore, restore-delivery
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256 of what names the object
    sa.Column("subject", sa.String(2000), nullable=False),  # the object, for a person reading the table
    sa.Column("state", sa.String(16), nullable=False),  # HELD, DONE, RELEASED
    sa.Column("claimed_by", sa.String(64), nullable=False),  # run id
    sa.Column("claimant", sa.String(255), nullable=False),  # host:pid of the process holding it
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),  # also the heartbeat
    sa.Column("version", sa.Integer, nullable=False),  # every change adds one: takeovers are compare-and-set
    sa.Column("done_by", sa.String(64)),
    sa.Column("done_at", sa.DateTime(timezone=True)),
    sa.Index("ix_claims_run_state", "claimed_by", "state"),
)

# ---- per-tenant storage, trash and compaction (migration 0004_tenant_storage) -------------------------------------

# Files soft-deleted by an operator (`glacier-pipelines trash`), one row per storage request and trash. A file stays
# answerable while TRASHED (restores by request id or URL work; its content leaves the dedupe lookups) until its
# deadline; `untrash` before it gives back the previous state (RESTORED), after it the safe-deletion path removes it
# (PURGED). DELETED: a deletion request removed it first.
trash = sa.Table(
    "trash",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("request_pk", sa.Integer, sa.ForeignKey("requests.id"), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("object_id", sa.Integer, sa.ForeignKey("objects.id")),
    sa.Column("member", sa.String(1024)),  # the member's name when the file is a package member
    sa.Column("state", sa.String(16), nullable=False),  # TRASHED, RESTORED, PURGED, DELETED
    sa.Column("how", sa.String(16), nullable=False),  # catalog (no S3 change) or moved (copied under the trash prefix)
    sa.Column("withdrawn", sa.JSON),  # digests taken out of the content lookups, put back by untrash
    sa.Column("original_key", sa.String(1024)),  # where a moved object was before the trash
    sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Index("ix_trash_tenant_state", "tenant", "state"),
    sa.Index("ix_trash_state_deadline", "state", "deadline"),
    sa.Index("ix_trash_request", "request_pk"),
)

# An old storedFileUrl that still names a file whose bytes moved (a compacted package's members): restoration,
# availability and deletion requests naming the old URL are answered from the new location.
url_aliases = sa.Table(
    "url_aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("old_url", sa.String(2100), nullable=False),
    sa.Column("new_url", sa.String(2100), nullable=False),
    sa.Column("request_pk", sa.Integer, sa.ForeignKey("requests.id")),
    sa.Column("reason", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_url_aliases_tenant_old", "tenant", "old_url"),
)

# Packages repacked because most of their bytes were deleted: the old package, its restore (archive classes), the new one.
compactions = sa.Table(
    "compactions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("old_package_id", sa.String(36), nullable=False),
    sa.Column("new_package_id", sa.String(36)),
    sa.Column("state", sa.String(16), nullable=False),  # RESTORING, DONE, FAILED
    sa.Column("old_url", sa.String(2100), nullable=False),
    sa.Column("new_url", sa.String(2100)),
    sa.Column("deleted_share", sa.Float, nullable=False),
    sa.Column("live_members", sa.Integer),
    sa.Column("bytes_before", sa.BigInteger),
    sa.Column("bytes_after", sa.BigInteger),
    sa.Column("early_deletion_charge_usd", sa.Float),
    sa.Column("restore_requested_at", sa.DateTime(timezone=True)),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.UniqueConstraint("old_package_id", name="uq_compactions_old_package"),
    sa.Index("ix_compactions_tenant_state", "tenant", "state"),
)
