"""Small files into packages: verified members wait durably staged, a full or aged package goes up as one object.

A package is stored with a JSON Lines manifest next to it (STANDARD class), so the catalog
can be rebuilt from the bucket alone. Every member's bytes are checked against its SHA-256 as
they go into the tar and its offset against the bytes written before it; a package written to a
local file (one PUT) is also re-read there at each offset before it is uploaded, a larger one
is streamed to its multipart upload as it is built, with no local copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.packages import OPEN, PackageStore, PackageTakenOver
from glacier_pipelines.core import keys, packaging, responses, staging, transfer
from glacier_pipelines.core.objectstore import NotFound, StoreError, put_document
from glacier_pipelines.flows.store_faults import described
from glacier_pipelines.flows.archive import ArchiveSetup, ledger_entry, raise_if_unreachable, write_ledger
from glacier_pipelines.flows.package_upload import StreamedUpload, upload_package_file  # noqa: F401  (compaction imports it from here)
from glacier_pipelines.flows.placement import check_tenant_bucket

log = logging.getLogger(__name__)
MiB = 1024 * 1024


@dataclass(frozen=True)
class PackagingPolicy:
    threshold: int = 1 * MiB  # a file at or under this size may be packaged
    target_size: int = 256 * MiB  # a package closes when its members reach this
    max_age: timedelta = timedelta(hours=24)  # ... or when it is this old
    tenant_thresholds: tuple[tuple[str, int], ...] = ()

    def threshold_for(self, tenant: str) -> int:
        return dict(self.tenant_thresholds).get(tenant, self.threshold)

    @classmethod
    def from_strings(cls, threshold: str, target: str, max_age_hours: str, tenant_thresholds: str = "") -> "PackagingPolicy":
        """Sizes in bytes; ``tenant_thresholds`` like ``lab=65536,museum=2097152``."""
        pairs = []
        for item in filter(None, (x.strip() for x in tenant_thresholds.split(","))):
            tenant, _, value = item.partition("=")
            pairs.append((keys.validate_tenant(tenant.strip()), int(value)))
        return cls(
            threshold=int(threshold), target_size=int(target), max_age=timedelta(hours=float(max_age_hours)), tenant_thresholds=tuple(pairs)
        )


@dataclass
class PackagingReport:
    tenant: str
    added: int = 0
    closed: int = 0
    members_stored: int = 0
    bytes_stored: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)


def eligible(policy: PackagingPolicy, tenant: str, activate: bool, size: int, stage_kind: str) -> bool:
    return activate and stage_kind == "file" and size <= policy.threshold_for(tenant)


@dataclass
class PackageCheckReport:
    packages_checked: int = 0
    members_checked: int = 0
    problems: list[tuple[str, list[str]]] = field(default_factory=list)  # (package URL, problems)
    answered: dict[str, int] = field(default_factory=lambda: {t.SUCCESS: 0, t.ERROR: 0})
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (request id, package URL, answer)
    unreachable: list[tuple[str, str]] = field(default_factory=list)


def check_packages(setup: ArchiveSetup, tenant: str | None) -> PackageCheckReport:
    """package_integrity's work: read back what S3 holds for each stored package whose members wait, then answer them.

    The package object's size, class and SHA-256 as S3 reports them (HEAD with checksum mode)
    must be those computed when the package was built, and its manifest (STANDARD, readable)
    must list every member at the offset, length and SHA-256 the catalog recorded.
    """
    store = PackageStore(setup.catalog)
    report = PackageCheckReport()
    for package in store.awaiting_check(tenant):
        obj = package["object"]
        try:
            problems = list(package["build_problems"])
            problems += transfer.verify_stored(
                setup.objects(obj.bucket), key=obj.key, s3_checksum=obj.s3_checksum, size=obj.size, storage_class=obj.storage_class
            )
            problems += _manifest_problems(setup, obj, package)
        except (ClientError, BotoCoreError, StoreError) as exc:
            report.unreachable.append((obj.url, described(exc)))  # S3's own words, as the other checks quote them
            continue
        report.packages_checked += 1
        report.members_checked += len(package["members"])
        if problems:
            report.problems.append((obj.url, problems))
        else:
            write_ledger(
                setup,
                [
                    ledger_entry(package["tenant"], m["request_id"], m["content"], m["deduplicated"], obj.storage_class)
                    for m in package["members"]
                ],
            )
        contents = {m["request_pk"]: m["content"] for m in package["members"]}
        for status, n in store.answer_package(package["id"], problems, contents).items():
            report.answered[status] += n
        report.requests += [(m["request_id"], obj.url, t.ERROR if problems else t.SUCCESS) for m in package["members"]]
    raise_if_unreachable(report, "package(s)", "members")
    return report


def _manifest_problems(setup: ArchiveSetup, obj: Any, package: dict[str, Any]) -> list[str]:
    if not package["manifest_key"]:
        return ["no manifest was recorded"]
    try:
        with setup.objects(obj.bucket).get(package["manifest_key"]) as manifest:
            body = manifest.read()
    except NotFound:
        return [f"manifest {package['manifest_key']} is missing"]
    return packaging.manifest_problems(body, obj.key, obj.sha256, package["members"])


def add_waiting_members(setup: ArchiveSetup, tenant: str, run_id: str, run_finished: Callable[[str], bool]) -> int:
    """glacier_packages' intake: the verified small files of every batch this run may take go into the open package."""
    return sum(
        add_verified_members(setup, batch_id, tenant, run_id)
        for batch_id in setup.catalog.take_batches(tenant, run_id, [t.VERIFIED], run_finished)
    )


def add_verified_members(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str) -> int:
    """Move the batch's verified package members into the tenant's open package (they answer DELAYED)."""
    rows = [r for r in setup.catalog.batch_requests(batch_id, [t.VERIFIED], stage_kind="member") if r.stage and r.stage["kind"] == "member"]
    if not rows:
        return 0
    members = [
        (r, packaging.member_name(_directory(r), r.checksum or ""), stage["path"], r.size or 0, stage["sha256"])
        for r in rows
        if (stage := r.stage) is not None
    ]  # every row has one (filtered above)
    PackageStore(setup.catalog).add_members(tenant, members, run_id, setup.packaging.target_size if setup.packaging else None)
    return len(rows)


def _directory(row: Any) -> str:
    """The request's destinationDirectory as its validator leaves it, without validating the whole stored request again.

    The body was validated when it was received; this is the one field the member's name needs, and
    re-validating every request of a batch was about 7% of this step on 10,000 small files.
    """
    return keys.sanitize_directory((row.body or {}).get("destinationDirectory", ""))


def due_packages(
    setup: ArchiveSetup,
    policy: PackagingPolicy,
    tenant: str | None,
    *,
    close_all: bool,
    now: datetime | None = None,
    run_finished: Callable[[str], bool] | None = None,
) -> list[dict[str, Any]]:
    """Open packages full or aged (all with ``close_all``), and claimed ones whose closing run is over, per ``run_finished``
    (without it, every claimed one: the claim decides)."""
    now = now or datetime.now(timezone.utc)
    return [
        p
        for p in PackageStore(setup.catalog).open_packages(tenant, closing=True)
        if (p["state"] == OPEN or run_finished is None or run_finished(p["run_id"]))
        and (close_all or p["member_bytes"] >= policy.target_size or now - p["created_at"] >= policy.max_age)
    ]


def close_package(setup: ArchiveSetup, package: dict[str, Any], run_id: str, report: PackagingReport) -> bool:
    """Build, verify, upload and record one package claimed by ``run_id``; a member whose staged bytes changed is failed,
    not packed. Returns whether it was stored (not when no member was left).

    The package, its manifest and its members' URLs go to the tenant's bucket, prefix and class (GLACIER_TENANTS_CONFIG).
    """
    store = PackageStore(setup.catalog)
    tenant, package_id = package["tenant"], package["id"]
    setup = setup.for_tenant(tenant)
    key = f"{keys.tenant_prefix(setup.key_prefix, tenant)}packages/{package_id}.tar"
    while True:
        members = store.members(package_id)
        if not members:
            return False
        unique: dict[str, packaging.Member] = {}
        for m in members:  # identical content is packed once; its other requests point at the same bytes
            unique.setdefault(
                m["sha256"], packaging.Member(m["name"], m["staged_path"], m["sha256"], m["request_id"], m["algorithm"], m["checksum"])
            )
        tar_path = setup.staging_area.package_file(tenant, package_id)
        # A package surely larger than one PUT goes up as it is built (its members alone pass the threshold).
        streamed = StreamedUpload(setup, key, tar_path) if sum(m["size"] for m in members) > setup.upload.multipart_threshold else None
        try:
            packed, tar_sha256, tar_size = packaging.build_tar(
                unique.values(),
                None if streamed else tar_path,  # streamed: no local copy (build_tar checks the offsets against the bytes sent)
                lambda m: staging.read_bytes(setup.objects, str(m.path)),
                streamed.write if streamed else None,
            )
        except packaging.PackagingError as exc:
            if streamed is not None:
                streamed.abort()
            bad = next((m for m in members if m["request_id"] == str(exc).split(":", 1)[0]), None)
            if bad is None:  # not a member's bytes: the tar could not be laid out as recorded, the package stays OPEN
                raise
            store.drop_member(bad["request_pk"], t.ERROR, f"staged copy damaged before packaging: {exc}")
            report.failed.append((bad["request_id"], str(exc)))
            continue
        except BaseException:
            if streamed is not None:
                streamed.abort()
            raise
        break
    problems: list[str] = []
    try:
        if streamed is None:
            with open(tar_path, "rb") as tar_file:  # one descriptor for every member, not an open per member
                problems = packaging.verify_members(lambda offset, length: os.pread(tar_file.fileno(), length, offset), packed)
        if problems:  # never store a package whose recorded offsets do not reproduce its members
            raise packaging.PackagingError("; ".join(problems))
        s3_checksum = streamed.complete(tar_sha256) if streamed else upload_package_file(setup, tar_path, key, tar_sha256, tar_size)
    except BaseException:
        if streamed is not None:
            streamed.abort()
        raise
    manifest_key = key + packaging.MANIFEST_SUFFIX
    body = packaging.manifest(package_id, tenant, key, tar_sha256, packed)
    put_document(setup.objects(setup.upload.bucket), manifest_key, body)
    by_sha = {p.sha256: p for p in packed}
    obj = {
        "tenant": tenant,
        "bucket": setup.upload.bucket,
        "key": key,
        "storage_class": setup.upload.storage_class,
        "size": tar_size,
        "sha256": tar_sha256,
        "s3_checksum": s3_checksum,
        "etag": None,
        "width": None,
        "height": None,
        "run_id": run_id,
        "batch_id": None,
    }
    placed, contents = {}, {}
    for m in members:
        p = by_sha[m["sha256"]]
        placed[m["request_pk"]] = (p.name, p.offset, p.length)
        req = m["body"]
        content = responses.success_content(
            bucket=setup.upload.bucket,
            key=key,
            checksum=m["checksum"],
            algorithm=m["algorithm"],
            size=m["size"],
            width=None,
            height=None,
            source_url=req["url"],
            small_file_managed=True,
        )
        content["storeFileMetadata"]["storedFileUrl"] = packaging.member_url(setup.upload.bucket, key, p.name)
        contents[m["request_pk"]] = content
    store.mark_stored(package_id, obj, placed, contents, manifest_key, problems, run_id)
    # Unlinks wait on the file system, not the CPU: a few at once cut this step severalfold for thousands of members.
    # Members appended to segments go with their segment, once no other open package's member is in it.
    staged = [m["staged_path"] for m in members]
    alone = [p for p in staged if not staging.in_segment(p)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda locator: staging.delete(setup.objects, locator), alone + ([] if streamed else [str(tar_path)])))
    if len(alone) < len(staged):
        staging.release_segments(setup.objects, staged, setup.catalog.live_staged_paths(tenant)[0])
    report.closed += 1
    report.members_stored += len(members)
    report.bytes_stored += tar_size
    report.packages.append({"package": package_id, "url": f"s3://{setup.upload.bucket}/{key}", "members": len(members), "bytes": tar_size})
    return True


def close_due(
    setup: ArchiveSetup,
    policy: PackagingPolicy,
    tenant: str | None,
    run_id: str,
    *,
    close_all: bool = False,
    run_finished: Callable[[str], bool] = lambda run: False,
) -> PackagingReport:
    """Close the due packages this run can claim; one another run is closing is left to it, unless ``run_finished`` says
    that run is over (the default never does: such a package then waits for a caller that can tell)."""
    store = PackageStore(setup.catalog)
    report = PackagingReport(tenant or "*")
    checked: set[str] = set()
    for package in due_packages(setup, policy, tenant, close_all=close_all):
        if package["tenant"] not in checked:  # a missing bucket of the tenant: ArchiveFault, the packages stay OPEN
            check_tenant_bucket(setup, package["tenant"])
            checked.add(package["tenant"])
        if not store.claim_for_closing(package["id"], run_id, run_finished):
            continue
        try:
            stored = close_package(setup, package, run_id, report)
        except (ClientError, BotoCoreError, StoreError, packaging.PackagingError, OSError) as exc:
            # The package is OPEN again with its members staged: the next close retries it.
            log.warning("package %s could not be stored: %s", package["id"], exc)
            report.failed.append((package["id"], f"package not stored yet: {exc}"))
            stored = False
        except PackageTakenOver as exc:  # nothing of this attempt was recorded; the other run stores the package
            log.warning("%s", exc)
            report.failed.append((package["id"], str(exc)))
            continue
        except BaseException:
            _release_quietly(store, package["id"], run_id)
            raise
        if not stored:
            store.release_claim(package["id"], run_id)
    return report


def _release_quietly(store: PackageStore, package_id: str, run_id: str) -> None:
    """Open the package again on the way out of an unexpected error; if even that fails, the next run takes the claim over."""
    try:
        store.release_claim(package_id, run_id)
    except Exception as exc:  # noqa: BLE001  (the original error is the one to raise)
        log.warning("package %s stays claimed by run %s until that run is over: %s", package_id, run_id, exc)
