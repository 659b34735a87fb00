"""The invariant every fault test asserts, counted rather than assumed.

Given the catalog, the bucket and what was submitted (with the source bytes), ``check``
counts:

- **lost**: a request that was never recorded, is not terminal, has no terminal response in
  the outbox, or (when the published responses are given) was never published; a request
  whose row and response disagree about its outcome also counts as lost;
- **duplicated**: more than one terminal response for one request (in the outbox or on the
  transport), or the same content stored as more than one object of a tenant;
- **orphaned**: an object under a tenant's prefix that no catalog row names, a multipart
  upload left open after the cleanup step, a staged file left behind;
- **mismatched**: a successful result whose object (read back in full: tests use the
  STANDARD class so it can be read) does not hold the source bytes.

``unexpected`` counts requests that ended with another terminal status than the test said
(a fault that should fail a request must fail it, with a message; one that should be
survived must not fail it).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import keys, transfer
from glacier_pipelines.core.ledger import is_ledger_key
from glacier_pipelines.core.objectstore import S3Store


@dataclass
class Submitted:
    """One request as the test sent it, with the bytes its source really holds."""

    tenant: str
    request_id: str
    data: bytes
    expect: str | None = "SUCCESS"  # the terminal status this fault must end in; None accepts any terminal one


@dataclass
class Tally:
    requests: int = 0
    lost: int = 0
    duplicated: int = 0
    orphaned: int = 0
    mismatched: int = 0
    unexpected: int = 0
    aborted_by_cleanup: int = 0
    partial_writes_swept: int = 0  # half-written staged files of killed processes, removed by the staging sweep
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.orphaned or self.mismatched or self.unexpected)

    def summary(self) -> str:
        return (
            f"{self.requests} requests {dict(self.statuses)}: lost {self.lost}, duplicated {self.duplicated}, "
            f"orphaned {self.orphaned}, mismatched {self.mismatched}, unexpected {self.unexpected}"
            + ("\n  " + "\n  ".join(self.problems) if self.problems else "")
        )


def _terminal_responses(catalog: Catalog) -> dict[tuple[str, str], list[dict[str, Any]]]:
    q = sa.select(t.responses).where(t.responses.c.status.in_(t.TERMINAL))
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with catalog.engine.connect() as conn:
        for row in conn.execute(q):
            m = dict(row._mapping)
            out.setdefault((m["tenant"], m["request_id"]), []).append(m)
    return out


def _member(catalog: Catalog, request_pk: int) -> dict[str, Any] | None:
    q = sa.select(t.package_members).where(t.package_members.c.request_pk == request_pk)
    with catalog.engine.connect() as conn:
        row = conn.execute(q).first()
    return dict(row._mapping) if row else None


def _read(s3: Any, bucket: str, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if byte_range is not None:
        args["Range"] = f"bytes={byte_range[0]}-{byte_range[0] + byte_range[1] - 1}"
    return s3.get_object(**args)["Body"].read()


def abandoned_uploads(catalog: Catalog, s3: Any, bucket: str, key_prefix: str, tenant: str) -> list[tuple[str, str]]:
    """Multipart uploads open under the tenant's prefix that no verified request waits on: (key, upload id)."""
    waiting = catalog.open_upload_ids()
    return [
        (u["Key"], u["UploadId"])
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=keys.tenant_prefix(key_prefix, tenant))
        for u in page.get("Uploads", [])
        if u["UploadId"] not in waiting
    ]


def check(
    catalog: Catalog,
    s3: Any,
    bucket: str,
    key_prefix: str,
    submitted: list[Submitted],
    *,
    published: list[tuple[str, str, str]] | None = None,
    cleanup: bool = False,
    staging_dir: Path | None = None,
) -> Tally:
    """Count lost, duplicated, orphaned and mismatched results (see the module docstring).

    ``published``: ``(tenant, request id, status)`` of every response read from the transport.
    ``cleanup``: run the project's own clean-up of abandoned multipart uploads first
    (``transfer.abort_stale_uploads``, keeping those that verified requests wait on), as if
    its grace period had passed; leftover uploads are counted after it either way.
    """
    tally = Tally(requests=len(submitted))
    responses = _terminal_responses(catalog)
    sent = Counter((tenant, rid) for tenant, rid, status in published or [] if status in t.TERMINAL)
    tenants = sorted({s.tenant for s in submitted})

    for sub in submitted:
        who = f"{sub.tenant}/{sub.request_id}"
        row = catalog.get_request(sub.tenant, sub.request_id)
        if row is None:
            tally.lost += 1
            tally.problems.append(f"{who}: never recorded (silently dropped)")
            continue
        tally.statuses[row.status] += 1
        answers = responses.get((sub.tenant, sub.request_id), [])
        if row.status not in t.TERMINAL:
            tally.lost += 1
            tally.problems.append(f"{who}: stuck in {row.status}")
            continue
        if not answers:
            tally.lost += 1
            tally.problems.append(f"{who}: {row.status} but no terminal response in the outbox")
            continue
        if len(answers) > 1:
            tally.duplicated += len(answers) - 1
            tally.problems.append(f"{who}: {len(answers)} terminal responses ({[a['status'] for a in answers]})")
        if answers[0]["status"] != row.status:
            tally.lost += 1
            tally.problems.append(f"{who}: row says {row.status}, response says {answers[0]['status']}")
            continue
        if published is not None:
            n = sent.get((sub.tenant, sub.request_id), 0)
            if n == 0:
                tally.lost += 1
                tally.problems.append(f"{who}: terminal response never published")
            elif n > 1:
                tally.duplicated += n - 1
                tally.problems.append(f"{who}: response published {n} times")
        if sub.expect is not None and row.status != sub.expect:
            tally.unexpected += 1
            tally.problems.append(f"{who}: ended {row.status}, expected {sub.expect}: {row.messages}")
        if row.status != t.SUCCESS:
            if not row.messages:
                tally.unexpected += 1
                tally.problems.append(f"{who}: {row.status} without a message")
            continue
        # A success must name an object that holds exactly the source bytes.
        objects = {o.id: o for o in catalog.objects(sub.tenant)}
        obj = objects.get(row.object_id) if row.object_id is not None else None
        if obj is None:
            tally.mismatched += 1
            tally.problems.append(f"{who}: SUCCESS without a stored object")
            continue
        member = _member(catalog, row.pk)
        try:
            data = _read(s3, obj.bucket, obj.key, (member["offset"], member["length"]) if member else None)
        except Exception as exc:  # the object is not there or not readable
            tally.mismatched += 1
            tally.problems.append(f"{who}: cannot read {obj.url}: {exc!r}")
            continue
        if hashlib.sha256(data).digest() != hashlib.sha256(sub.data).digest():
            tally.mismatched += 1
            tally.problems.append(f"{who}: {obj.url} holds {len(data)} bytes that differ from the {len(sub.data)} source bytes")
        body_url = (answers[0]["body"].get("content") or {}).get("storeFileMetadata", {}).get("storedFileUrl", "")
        if not body_url.startswith(obj.url):
            tally.mismatched += 1
            tally.problems.append(f"{who}: response names {body_url!r}, catalog {obj.url}")

    for (tenant, rid), n in sent.items():
        if not any(s.tenant == tenant and s.request_id == rid for s in submitted):
            tally.duplicated += n
            tally.problems.append(f"{tenant}/{rid}: a response for a request nobody submitted")

    for tenant in tenants:
        objects = catalog.objects(tenant)
        for sha, n in Counter(o.sha256 for o in objects).items():
            if n > 1:
                tally.duplicated += n - 1
                tally.problems.append(f"{tenant}: content {sha[:12]}… stored as {n} objects")
        named = {(o.bucket, o.key) for o in objects}
        with catalog.engine.connect() as conn:
            named |= {
                (bucket, k)
                for (k,) in conn.execute(
                    sa.select(t.packages.c.manifest_key).where(t.packages.c.tenant == tenant, t.packages.c.manifest_key.is_not(None))
                )
            }
        prefix = keys.tenant_prefix(key_prefix, tenant)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if (bucket, item["Key"]) not in named and not is_ledger_key(item["Key"]):  # the ledger is named by no row, by design
                    tally.orphaned += 1
                    tally.problems.append(f"orphan object s3://{bucket}/{item['Key']} ({item['Size']} bytes): no catalog row names it")
        if cleanup:
            # As if the grace period had passed: every upload that no verified request waits on is stale.
            aborted = transfer.abort_stale_uploads(S3Store(s3, bucket), prefix, catalog.open_upload_ids(), timedelta(minutes=-1))
            tally.aborted_by_cleanup += len(aborted)
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                tally.orphaned += 1
                tally.problems.append(
                    f"multipart upload {upload['UploadId']} of {upload['Key']} left open" + (" after the clean-up" if cleanup else "")
                )
    if staging_dir is not None and staging_dir.exists() and cleanup:
        # As if the sweep's grace period had passed: a killed process's half-written file (``*.part``) is the
        # sweep's to remove; anything else it had to remove was left behind by the normal path, and counts.
        from glacier_pipelines.flows.archive import ArchiveSetup, sweep_staging

        setup = ArchiveSetup(catalog=catalog, s3=s3, upload=None, sources=None, key_prefix=key_prefix, staging_dir=staging_dir)
        for tenant in tenants:
            for locator in sweep_staging(setup, tenant, now=datetime.now(timezone.utc) + timedelta(days=30)):
                if locator.endswith(".part"):
                    tally.partial_writes_swept += 1
                else:
                    tally.orphaned += 1
                    tally.problems.append(f"staged file left behind: {locator}")
    if staging_dir is not None and staging_dir.exists():
        for path in sorted(p for p in staging_dir.rglob("*") if p.is_file()):
            tally.orphaned += 1
            tally.problems.append(f"staged file left behind: {path}")
    return tally
