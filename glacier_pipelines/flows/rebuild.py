"""Rebuilding the catalog from the bucket alone: package manifests name every member and its request."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import ClientError

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import packaging, transfer

log = logging.getLogger(__name__)


def rebuild(catalog: Catalog, s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Recreate objects, packages, members and their requests (SUCCESS) from what ``bucket`` holds under ``prefix``.

    Package members come back with their request ids from the manifests; standalone objects
    come back as objects (with the checksums in their metadata), since no manifest names
    their requests. Rows that already exist are left as they are.
    """
    counts = {"manifests": 0, "members": 0, "objects": 0}
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]
    manifest_keys = [k for k in keys if k.endswith(packaging.MANIFEST_SUFFIX)]
    package_keys = {k[: -len(packaging.MANIFEST_SUFFIX)] for k in manifest_keys}
    now = datetime.now(timezone.utc)
    for manifest_key in manifest_keys:
        rows = packaging.parse_manifest(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        if not rows:
            continue
        head = transfer.head_checksum(s3, bucket, rows[0]["key"])
        with catalog.engine.begin() as conn:
            object_id = _object(conn, bucket, rows[0]["key"], rows[0]["tenant"], head, rows[0]["packageSha256"], now)
            package_id = rows[0]["package"]
            if conn.execute(sa.select(t.packages.c.id).where(t.packages.c.id == package_id)).first() is None:
                conn.execute(t.packages.insert().values(id=package_id, tenant=rows[0]["tenant"], state="STORED", created_at=now, closed_at=now,
                                                        member_bytes=sum(r["length"] for r in rows), object_id=object_id,
                                                        manifest_key=manifest_key, verify_problems=[]))
            for row in rows:
                if conn.execute(sa.select(t.requests.c.id).where(t.requests.c.tenant == row["tenant"],
                                                                 t.requests.c.request_id == row["request_id"])).first():
                    continue
                pk = conn.execute(t.requests.insert().values(
                    tenant=row["tenant"], request_id=row["request_id"], body=None, received_at=now, updated_at=now, status=t.SUCCESS,
                    messages=[f"rebuilt from {manifest_key}"], algorithm=row["algorithm"], checksum=row["checksum"],
                    object_id=object_id, deduplicated=False, size=row["length"])).inserted_primary_key[0]
                conn.execute(t.package_members.insert().values(request_pk=pk, package_id=package_id, tenant=row["tenant"], name=row["name"],
                                                               size=row["length"], sha256=row["sha256"], offset=row["offset"],
                                                               length=row["length"]))
                counts["members"] += 1
        counts["manifests"] += 1
    for key in keys:
        if key.endswith(packaging.MANIFEST_SUFFIX) or key in package_keys:
            continue
        try:
            head = transfer.head_checksum(s3, bucket, key)
        except ClientError as exc:
            log.warning("rebuild: cannot read s3://%s/%s: %s", bucket, key, exc)
            continue
        meta = head.get("Metadata", {})
        tenant = key[len(prefix):].lstrip("/").split("/", 1)[0]
        with catalog.engine.begin() as conn:
            object_id = _object(conn, bucket, key, tenant, head, meta.get("sha256", ""), now)
            for algorithm, value in ((meta.get("source-algorithm"), meta.get("source-checksum")), ("SHA-256", meta.get("sha256"))):
                if algorithm and value and conn.execute(sa.select(t.object_checksums.c.object_id).where(
                        t.object_checksums.c.object_id == object_id, t.object_checksums.c.algorithm == algorithm)).first() is None:
                    conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm=algorithm, checksum=value))
        counts["objects"] += 1
    return counts


def _object(conn: Any, bucket: str, key: str, tenant: str, head: dict[str, Any], sha256: str, now: datetime) -> int:
    existing = conn.execute(sa.select(t.objects.c.id).where(t.objects.c.bucket == bucket, t.objects.c.key == key)).scalar()
    if existing is not None:
        return existing
    object_id = conn.execute(t.objects.insert().values(
        tenant=tenant, bucket=bucket, key=key, storage_class=head.get("StorageClass") or "STANDARD", size=head["ContentLength"],
        sha256=sha256, s3_checksum=head.get("ChecksumSHA256") or "", etag=(head.get("ETag") or "").strip('"'), stored_at=now,
    )).inserted_primary_key[0]
    if sha256:
        conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm="SHA-256", checksum=sha256))
    return object_id
