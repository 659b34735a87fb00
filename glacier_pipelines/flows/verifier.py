"""verify_batch's work: fetch each claimed request once, verify its checksum, measure it and stage the bytes.

Package members are not staged one file each: their verified bytes are appended to a segment
(core/staging.py): the verifier's own, one per group recorded together, and one per fetch
process and group; each is synced once before the group is marked VERIFIED.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import RequestRow
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import checksums, faults, images, keys, local_fetch, staging, transfer
from glacier_pipelines.core.objectstore import StoreError
from glacier_pipelines.core.sources import SourceError, open_source
from glacier_pipelines.flows.archive_setup import ArchiveSetup, StepReport, fail, hold, is_held, link
from glacier_pipelines.flows.placement import locate
from glacier_pipelines.flows.store_faults import said

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
SOURCE_ATTEMPTS = 3
VERIFIED_PER_COMMIT = 256  # verified small files made durable and recorded together
FETCHERS = 4  # sources fetched, hashed and staged at once (hashlib and file/socket I/O release the GIL)
FETCH_AHEAD = 16  # fetches started ahead of the request being recorded
READ_AHEAD_FROM = 4 * CHUNK  # larger sources are read on their own thread
PROCESS_FETCH_FROM = 512  # local package candidates in a batch before worker processes pay for their start (about 0.2 s)
PROCESS_CHUNK = 16  # files per worker task
# Tasks a worker may have ahead: its answers are digests and segment locators, not bytes, so many cost little memory,
# and they keep it reading while the verifier syncs and records a group.
PROCESS_TASKS_AHEAD = 8


def _measure_image(result: transfer.StageResult, messages: list[str]) -> tuple[int | None, int | None]:
    stage = result.stage
    try:
        if result.body is not None:  # held in memory, whole
            size = images.probe_image(result.body, complete=True)
        elif staging.in_segment(stage.get("path") or ""):  # appended to a segment by a fetch process
            size = images.probe_image(staging.read_bytes(None, stage["path"]), complete=True)
        elif stage["kind"] == "file" and not staging.is_remote(stage["path"]):
            size = images.probe_image(stage["path"], complete=True)
        else:  # the first bytes read (all of them for a file small enough)
            size = images.probe_image(result.head, complete=result.complete_in_head)
        return size.width, size.height
    except images.ImageProbeError as exc:
        messages.append(f"image size not computed: {exc}")
        return None, None


def _fetch_and_stage(
    setup: ArchiveSetup, row: RequestRow, key: str, durable: bool = True, multipart_gate: Any = None, hold_up_to: int | None = None
) -> transfer.StageResult:
    req = row.request
    staging_path = setup.staging_area.locator(row.tenant, row.pk, req.checksum)
    metadata = {"source-algorithm": req.algorithm, "source-checksum": req.checksum}
    for attempt in range(1, SOURCE_ATTEMPTS + 1):
        try:
            with open_source(req.url, setup.sources) as src:
                chunks = src.chunks(CHUNK)
                if src.size is None or src.size > READ_AHEAD_FROM:
                    chunks = transfer.read_ahead(chunks)  # the next reads overlap this chunk's hashing and upload
                return transfer.stage_stream(
                    chunks,
                    stores=setup.objects,
                    settings=setup.upload,
                    key=key,
                    algorithm=req.algorithm,
                    expected_checksum=req.checksum,
                    staging_path=staging_path,
                    metadata=metadata,
                    durable=durable,
                    multipart_gate=multipart_gate,
                    hold_up_to=hold_up_to,
                )
        except SourceError as exc:
            if not exc.retryable or attempt == SOURCE_ATTEMPTS:
                raise
            log.warning("request %s: source failed (%s), attempt %d of %d", row.request_id, exc.reason, attempt, SOURCE_ATTEMPTS)
            time.sleep(min(2.0**attempt * 0.25, 5.0))
    raise AssertionError("unreachable")


class BatchVerifier:
    """One pass of verify_batch.

    Fetching (source, hashes, staging) runs ahead on a few threads; every decision stays on the
    calling thread, in request order. Only the first request of each content is fetched ahead:
    one deduplicated, or whose twin failed, is decided or fetched in its turn. Verified requests
    are recorded in groups: their staged files are synced to disk together, then marked VERIFIED
    in one transaction, on a recorder thread while the next group is verified (groups in order,
    one at a time). A crash before that leaves them CLAIMED, and the next run fetches them
    again: nothing is recorded as staged that is not on disk. A local
    package member's bytes come back from a fetch thread in memory and are appended, here, to the
    group's segment; a fetch process appends them to a segment of its own. Every segment the group
    has members in is synced before the group is recorded.
    """

    def __init__(self, setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str):
        self.setup, self.tenant, self.run_id = setup, tenant, run_id
        self.report = StepReport(batch_id=batch_id, tenant=tenant)
        policy = setup.packaging  # asked once per file: the tenant's package threshold, unless nothing is packaged or staged here
        self.hold_limit = None if policy is None or setup.staging_area.remote else policy.threshold_for(tenant)
        self.pending: list[dict[str, Any]] = []  # verified, not yet recorded
        self.staged: list[str] = []  # their staged files, not yet synced
        self.group_due = False  # the pending group is to be recorded before the next request
        self.group_wait = False  # ... and its record waited for (an open multipart upload: costly to redo)
        # The previous group's sync and record, on a thread of its own while the next group is verified (``_record_verified``).
        self.recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record")
        self.recording: Future | None = None
        self.segment = staging.SegmentWriter(setup.staging_area.segment_folder(tenant))  # their package members' bytes
        self.appended: set[str] = set()  # segments the fetch processes appended members of the group to, not synced yet
        self.verified_keys = {  # content -> (first request pk, its stage, size), for twins in the batch
            (r.algorithm, r.checksum): (r.pk, r.stage, r.size)
            for r in setup.catalog.batch_requests(batch_id, [t.VERIFIED])
            if r.stage and r.stage["kind"] != "duplicate"
        }
        self.claimed = setup.catalog.batch_requests(batch_id, [t.CLAIMED])
        self.maybe_stored = setup.catalog.known_checksums(tenant, [(r.algorithm, r.checksum) for r in self.claimed if r.checksum])
        seen = set(self.verified_keys)
        self.ahead: deque[RequestRow] = deque()
        for row in self.claimed:
            content = (row.algorithm, row.checksum)
            if row.checksum and content not in seen and (row.algorithm, row.checksum.lower()) not in self.maybe_stored:
                seen.add(content)
                self.ahead.append(row)
        self.fetches: dict[int, Future] = {}
        self.gate = threading.Lock()  # one multipart stream at a time: parallel fetching never multiplies large-file memory
        # Local package candidates are read and hashed by worker processes when a batch has many (core/local_fetch.py).
        self.workers = local_fetch.worker_count(setup.fetch_processes)
        self.local_chunks: deque[list[RequestRow]] = deque()  # not sent yet
        self.local: dict[int, tuple[RequestRow, tuple[Future, int]]] = {}  # request pk -> (the row, (its task, its place in it))
        self.local_left: dict[Future, int] = {}  # tasks sent whose files are not all verified yet
        self.processes: local_fetch.FetchProcesses | None = None
        self.worker_policy = dataclasses.replace(setup.sources, s3_client=None)  # file:// needs only the roots; a client does not pickle
        candidates = [row for row in self.ahead if self._worker_limit(row) and self._valid_key(row)]
        if self.workers and len(candidates) >= PROCESS_FETCH_FROM:
            chosen = {row.pk for row in candidates}
            self.ahead = deque(row for row in self.ahead if row.pk not in chosen)
            self.local_chunks.extend(candidates[i : i + PROCESS_CHUNK] for i in range(0, len(candidates), PROCESS_CHUNK))

    def run(self) -> StepReport:
        try:
            return self._run()
        finally:
            self.recorder.shutdown(wait=True)  # a group's record under way finishes before the step ends, whatever ended it

    def _run(self) -> StepReport:
        fault = None
        processes = self.processes = self._start_processes()
        with ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="fetch") as pool:
            try:
                for row in self.claimed:
                    self._fetch_ahead(pool)
                    if processes is not None:
                        self._send_local(processes)
                    self._verify_one(row)
                    if self.group_due:
                        self._record_verified(wait=self.group_wait)
            except faults.ArchiveFault as exc:
                fault = exc
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                if processes is not None:
                    processes.shutdown()
                    self.processes = None
                if fault is not None:
                    self._discard_fetched()
        try:
            self._record_verified(wait=True)
        finally:
            self.segment.discard()  # an unexpected error before the seal: no request points at its bytes
        if fault is not None:
            raise fault
        return self.report

    def _discard_fetched(self) -> None:
        """Stages fetched ahead for requests that a fault left unverified: released, the requests stay CLAIMED."""
        for future in self.fetches.values():
            if future.done() and not future.cancelled() and future.exception() is None:
                try:
                    transfer.discard_stage(self.setup.objects, future.result().stage)
                except (StoreError, OSError) as exc:
                    log.warning("could not release a stage fetched ahead: %s", said(exc))
        self.fetches.clear()

    def _fetch_ahead(self, pool: ThreadPoolExecutor) -> None:
        while self.ahead and len(self.fetches) < FETCH_AHEAD:
            row = self.ahead.popleft()
            try:
                key = keys.object_key(self.setup.key_prefix, self.tenant, row.request.destinationDirectory, row.request.checksum)
            except keys.InvalidKey:
                continue  # refused in its turn, with the reason
            self.fetches[row.pk] = pool.submit(_fetch_and_stage, self.setup, row, key, False, self.gate, self._hold_up_to(row))

    def _worker_limit(self, row: RequestRow) -> int | None:
        """The largest size a worker process may read of this request: a local package candidate's; None for any other."""
        hold = self._hold_up_to(row)
        if hold is None or not row.request.url.lower().startswith("file:"):
            return None
        return min(hold, self.setup.upload.multipart_threshold)  # larger ones stream as multipart uploads, in-process

    def _valid_key(self, row: RequestRow) -> bool:
        try:
            keys.object_key(self.setup.key_prefix, self.tenant, row.request.destinationDirectory, row.request.checksum)
        except keys.InvalidKey:
            return False  # refused in its turn, with the reason, before any fetch
        return True

    def _start_processes(self) -> local_fetch.FetchProcesses | None:
        if not self.local_chunks:
            return None
        try:
            return local_fetch.FetchProcesses(self.workers)
        except OSError as exc:
            self._stop_processes(str(exc))
            return None

    def _stop_processes(self, reason: str) -> None:
        """No more work for the processes: what they still owed and what was not sent goes back to the fetch threads."""
        if self.workers:
            log.warning("fetch processes stopped (%s); the fetch threads read the remaining files", reason)
        self.workers = 0
        owed = sorted((row for row, _ in self.local.values()), key=lambda row: row.pk)
        self.ahead.extendleft(reversed(owed + [row for chunk in self.local_chunks for row in chunk]))
        self.local.clear()
        self.local_left.clear()
        self.local_chunks.clear()

    def _send_local(self, processes: local_fetch.FetchProcesses) -> None:
        policy = self.worker_policy
        while self.workers and self.local_chunks and len(self.local_left) < PROCESS_TASKS_AHEAD * self.workers:
            chunk = self.local_chunks.popleft()
            items = [(row.request.url, row.request.algorithm, self._worker_limit(row) or 0) for row in chunk]
            future = processes.submit(policy, items, self.segment.folder)  # each process appends the bytes to its own segment
            self.local_left[future] = len(chunk)
            self.local.update((row.pk, (row, (future, i))) for i, row in enumerate(chunk))

    def _from_worker(self, row: RequestRow, key: str) -> transfer.StageResult | None:
        """What a worker process read and hashed for ``row``, as the in-process fetch would stage it; None to fetch it here."""
        entry = self.local.pop(row.pk, None)
        if entry is None:
            return None
        future, index = entry[1]
        self.local_left[future] -= 1
        if not self.local_left[future]:
            del self.local_left[future]
        try:
            fetched = future.result()[index]
        except Exception as exc:  # noqa: BLE001  (the worker process failed: this file and every later one are fetched here)
            self._stop_processes(f"{type(exc).__name__}: {exc}")
            return None
        if fetched is None or fetched.digests.get(checksums.normalize_algorithm(row.request.algorithm)) != row.request.checksum.lower():
            return None  # the in-process fetch retries, or reports the mismatch in its own words
        if fetched.locator is not None:  # always a package member (``_worker_limit``): the stage is the segment's
            return transfer.appended_result(self.setup.upload.bucket, key, fetched.digests, fetched.locator, fetched.size)
        assert fetched.body is not None
        return transfer.held_result(self.setup.upload.bucket, key, fetched.digests, fetched.body)

    def _hold_up_to(self, row: RequestRow) -> int | None:
        """Up to what size a fetch keeps the verified bytes in memory for the segment: a would-be package member's, when staging is local."""
        return self.hold_limit if row.request.activateSmallFilePackaging else None

    def _record_verified(self, wait: bool = False) -> None:
        """Hand the group to the recorder thread, which syncs its staged bytes and then marks it VERIFIED.

        The sync (one syncfs, tens of milliseconds) and the transaction overlap the next group's
        verification; groups are recorded in order, one at a time, and a failed record raises here
        (with the next group, or at the end of the step) and stops the step: its requests stay CLAIMED.
        """
        self.group_due = self.group_wait = False
        self._link_packed_elsewhere()
        self.segment.seal()
        # The fetch processes' segments with the group's staged files (a remote PUT is durable when answered): synced before
        # their members are recorded. With segments, the folders a process may have made too (syncfs covers them on Linux;
        # elsewhere each path and its parent is synced).
        folders = [str(self.segment.folder), str(self.segment.folder.parent)] if self.appended else []
        paths = [*sorted(self.appended), *folders, *(p for p in self.staged if not staging.is_remote(p))]
        if self.appended and self.processes is not None:
            self.processes.new_segments()
        pending, self.pending, self.staged, self.appended = self.pending, [], [], set()
        self._wait_recorded()
        if pending or paths:
            self.recording = self.recorder.submit(self._sync_and_record, paths, pending)
        if wait:
            self._wait_recorded()

    def _sync_and_record(self, paths: list[str], pending: list[dict[str, Any]]) -> None:
        transfer.sync_staged(paths)  # nothing is recorded as staged before its bytes are on disk
        self.setup.catalog.mark_verified_many(pending)

    def _wait_recorded(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            recording.result()

    def _link_packed_elsewhere(self) -> None:
        """Small files whose bytes are already stored (announced in another algorithm): answered, not packed again.

        Checked for the whole group with one query, not one per file.
        """
        members = [p for p in self.pending if p["stage"].get("kind") == "member"]
        known = self.setup.catalog.known_sha256s(self.tenant, {p["stage"]["sha256"] for p in members}) if members else set()
        for entry in [p for p in members if p["stage"]["sha256"] in known]:
            found = locate(self.setup, self.tenant, sha256=entry["stage"]["sha256"])
            if found is None:
                continue
            staging.delete(self.setup.objects, entry["stage"]["path"])
            if entry["stage"]["path"] in self.staged:
                self.staged.remove(entry["stage"]["path"])
            link(self.setup, entry["row"], found, self.run_id)
            self.pending.remove(entry)
            self.report.verified -= 1
            self.report.deduplicated += 1
            self.report.bytes -= entry["bytes"]

    def _verify_one(self, row: RequestRow) -> None:
        setup, tenant, run_id, report = self.setup, self.tenant, self.run_id, self.report
        report.considered += 1
        try:
            req = row.request
            found = (
                locate(setup, tenant, algorithm=req.algorithm, checksum=req.checksum)
                if (req.algorithm, req.checksum.lower()) in self.maybe_stored
                else None
            )
            if found is not None:
                link(setup, row, found, run_id)
                report.deduplicated += 1
                return
            if (req.algorithm, req.checksum) in self.verified_keys:
                # The same content earlier in this batch: store it once, answer both.
                first, first_stage, first_size = self.verified_keys[(req.algorithm, req.checksum)]
                if first_stage["kind"] == "member":
                    stage = first_stage  # joins the same package; the bytes are packed once
                else:
                    stage = {"kind": "duplicate", "of": first}
                self.pending.append(
                    {
                        "pk": row.pk,
                        "size": first_size,
                        "width": None,
                        "height": None,
                        "stage": stage,
                        "messages": row.messages,
                        "row": row,
                        "bytes": 0,
                    }
                )
                report.verified += 1
                return
            key = keys.object_key(setup.key_prefix, tenant, req.destinationDirectory, req.checksum)
            result = self._from_worker(row, key)
            if result is None:
                fetched = self.fetches.pop(row.pk, None)
                result = (
                    fetched.result()
                    if fetched is not None
                    else _fetch_and_stage(setup, row, key, durable=False, hold_up_to=self._hold_up_to(row))
                )
            messages = list(row.messages)
            width = height = None
            if req.computeImageSize:
                width, height = _measure_image(result, messages)
            stage = dict(result.stage, sha256=result.digests[checksums.S3_ALGORITHM])
            if result.body is None and (appended := staging.in_segment(stage.get("path") or "")):
                self.appended.add(appended[0])
            if (
                setup.packaging is not None
                and setup.packaging.threshold_for(tenant) >= result.size
                and req.activateSmallFilePackaging
                and stage["kind"] == "file"
            ):
                stage["kind"] = "member"  # waits for its package instead of going up alone (unless stored: see _link_packed_elsewhere)
            if result.body is not None:
                if stage["kind"] == "member":
                    stage["path"] = self.segment.append(result.body)
                else:  # held for a package but not one after all: staged alone, as any file
                    stage["path"] = setup.staging_area.locator(row.tenant, row.pk, req.checksum)
                    staging.write(setup.objects, stage["path"], [result.body], durable=False)
            self.pending.append(
                {
                    "pk": row.pk,
                    "size": result.size,
                    "width": width,
                    "height": height,
                    "stage": stage,
                    "messages": messages,
                    "row": row,
                    "bytes": result.size,
                }
            )
            if stage["kind"] in ("file", "member") and not staging.in_segment(stage["path"]):
                self.staged.append(stage["path"])
            self.verified_keys[(req.algorithm, req.checksum)] = (row.pk, stage, result.size)
            report.verified += 1
            report.bytes += result.size
            if stage["kind"] == "multipart" or len(self.pending) >= VERIFIED_PER_COMMIT:
                self.group_due = True
                self.group_wait = stage["kind"] == "multipart"  # an open multipart upload is recorded at once: it is costly to redo
        except transfer.ChecksumMismatch as exc:
            fail(setup, report, row, f"checksum mismatch: {exc}")
        except SourceError as exc:
            fail(setup, report, row, f"source {exc.url}: {exc.reason}")
        except (ClientError, BotoCoreError, StoreError) as exc:
            if is_held(exc):
                raise hold(report, row, exc, setup) from exc
            fail(setup, report, row, f"upload to S3 failed: {said(exc)}")
        except keys.InvalidKey as exc:
            fail(setup, report, row, f"object key: {exc}")
        except Exception as exc:  # never let one request stop the batch
            log.exception("request %s failed unexpectedly", row.request_id)
            fail(setup, report, row, f"internal error: {type(exc).__name__}: {exc}")
