"""The blocking check of stored objects (checksum_integrity's work) and the request ledger it writes before answering.

Every object a waiting request points at is read back (HEAD with checksum mode) in the bucket the
catalog recorded for it; the ledger goes next to each tenant's bytes (its bucket and prefix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from glacier_pipelines.catalog import RequestRow, StoredObject
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import faults, keys, ledger, transfer
from glacier_pipelines.core.objectstore import StoreError, put_document
from glacier_pipelines.flows.store_faults import described

if TYPE_CHECKING:
    from glacier_pipelines.flows.archive import ArchiveSetup


@dataclass
class CheckReport:
    """What a blocking check read back and how it answered the requests waiting on it."""

    checked: int = 0
    mismatches: list[tuple[str, list[str]]] = field(default_factory=list)  # (object URL, problems)
    answered: dict[str, int] = field(default_factory=lambda: {t.SUCCESS: 0, t.ERROR: 0})
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (request id, object URL, answer)
    unreachable: list[tuple[str, str]] = field(default_factory=list)  # (object URL, fault): not judged, still waiting


def check_batch(setup: ArchiveSetup, batch_id: str) -> tuple[int, list[tuple[str, list[str]]]]:
    """Read back every object the batch's requests point at, and answer those of them still waiting on the check."""
    report = check_objects(setup, [(obj, []) for obj in setup.catalog.objects_for_batch(batch_id)])
    return report.checked, report.mismatches


def check_waiting(setup: ArchiveSetup, tenant: str | None) -> CheckReport:
    """checksum_integrity's work: read back each object that STORED requests of ``tenant`` wait on, then answer them."""
    return check_objects(setup, setup.catalog.awaiting_check(tenant))


def check_objects(setup: ArchiveSetup, objects: list[tuple[StoredObject, list[RequestRow]]]) -> CheckReport:
    """HEAD each object with checksum mode; its waiting requests are answered SUCCESS, or ERROR with the problems.

    An object S3 could not be asked about (unreachable, throttled) gets no verdict: its requests
    keep waiting and ArchiveFault is raised once the others are answered.
    """
    report = CheckReport()
    verdicts: dict[int, list[str]] = {}
    entries: list[dict[str, Any]] = []
    for obj, rows in objects:
        try:
            problems = transfer.verify_stored(
                setup.objects(obj.bucket), key=obj.key, s3_checksum=obj.s3_checksum, size=obj.size, storage_class=obj.storage_class
            )
        except StoreError as exc:
            report.unreachable.append((obj.url, described(exc)))
            continue
        report.checked += 1
        verdicts[obj.id] = problems
        if problems:
            report.mismatches.append((obj.url, problems))
        report.requests += [(row.request_id, obj.url, t.ERROR if problems else t.SUCCESS) for row in rows]
        if not problems:
            entries += [
                ledger_entry(row.tenant, row.request_id, (row.stage or {}).get("content"), row.deduplicated, obj.storage_class)
                for row in rows
            ]
    write_ledger(setup, entries)  # before the answers: nothing is told SUCCESS that the bucket does not record
    if verdicts:
        for status, n in setup.catalog.answer_checked(verdicts, "checksum_integrity").items():
            report.answered[status] += n
    raise_if_unreachable(report, "object(s)", "requests")
    return report


def ledger_entry(tenant: str, request_id: str, content: dict[str, Any] | None, deduplicated: bool, storage_class: str) -> dict[str, Any]:
    """One request's ledger line, from the SUCCESS content it is about to be answered with."""
    meta = (content or {}).get("storeFileMetadata", {})
    return {
        "tenant": tenant,
        "requestId": request_id,
        "status": t.SUCCESS,
        "algorithm": meta.get("algorithm"),
        "checksum": meta.get("checksum"),
        "storedFileUrl": meta.get("storedFileUrl"),
        "size": meta.get("fileSizeInBytes"),
        "width": meta.get("widthInPx"),
        "height": meta.get("heightInPx"),
        "deduplicated": bool(deduplicated),
        "storageClass": storage_class,
        "answeredAt": datetime.now(timezone.utc).isoformat(),
    }


def write_ledger(setup: ArchiveSetup, entries: list[dict[str, Any]]) -> None:
    """Put one ledger object per tenant (see core/ledger.py); a failure stops the answers, which then wait for the next check."""
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.get("storedFileUrl"):
            by_tenant.setdefault(entry["tenant"], []).append(entry)
    for tenant, group in by_tenant.items():
        body = ledger.encode(group)
        scoped = setup.for_tenant(tenant)  # next to the tenant's bytes: its bucket and prefix
        put_document(scoped.objects(scoped.upload.bucket), ledger.key_for(keys.tenant_prefix(scoped.key_prefix, tenant)), body)


def raise_if_unreachable(report: Any, things: str, waiting: str) -> None:
    """After a check answered what it could judge: fail loudly if S3 could not be asked about some (they keep waiting)."""
    if report.unreachable:
        url, reason = report.unreachable[0]
        fault = faults.ArchiveFault(
            f"{len(report.unreachable)} {things} could not be read back (first: {url}: {reason}); "
            f"their {waiting} keep waiting for the next check"
        )
        fault.report = report  # type: ignore[attr-defined]
        raise fault
