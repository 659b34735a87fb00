"""TEST DOUBLE: a local emulator of the legacy Amazon S3 Glacier *vault* REST API (2012-06-01).

This is not production code. It exists so tests can point the real ``boto3.client("glacier")`` at
``http://127.0.0.1:PORT`` and exercise vault -> S3 copies with per-range tree-hash verification,
which moto's Glacier cannot do (plain SHA-256 above 1 MiB, ranges ignored, no
``x-amz-sha256-tree-hash`` on job output, fixed job delays).

Behaviour follows the Amazon S3 Glacier Developer Guide (API version 2012-06-01):

* Initiate Job (POST jobs): ``archive-retrieval`` (optional megabyte-aligned ``RetrievalByteRange``,
  ``Tier`` Bulk/Standard/Expedited, default Standard) and ``inventory-retrieval`` (``Format`` JSON/CSV,
  default JSON, optional ``InventoryRetrievalParameters`` StartDate/EndDate/Limit/Marker);
  answers 202 with ``Location`` and ``x-amz-job-id``.
* Describe Job (GET jobs/ID) and List Jobs (GET jobs, with completed/statuscode/limit/marker);
  job descriptions carry every GlacierJobDescription field, ``null`` where it does not apply.
* Get Job Output (GET jobs/ID/output) with optional ``Range: bytes=...``: 200 or 206 (with
  ``Content-Range``), ``Accept-Ranges: bytes``, Content-Type by job kind, and ``x-amz-sha256-tree-hash``
  exactly when both the retrieval range and the download range are *tree-hash aligned*
  ("Receiving Checksums When Downloading Data").
* Describe Vault / List Vaults, read-only.
* Every write (DeleteArchive, DeleteVault, UploadArchive, multipart uploads, tags, policies,
  notifications, ...) answers 403 AccessDeniedException and is counted in ``modifications``:
  the emulated vaults are a read-only *source*.
* Errors use Glacier's JSON shape ``{"code": ..., "message": ..., "type": "Client"|"Server"}``,
  which botocore turns into ``ClientError`` with that code.
* Requests must carry an ``Authorization`` header (any value: signatures are not verified).

Seed vaults through the Python API (``create_vault``, ``add_archive``); control time and faults with
``job_delay_seconds``, ``complete_jobs``, ``fail_job``, ``expire_job``, ``corrupt_range`` and
``throttle``; assert on ``requests``, ``jobs`` and ``modifications``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import socket
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence

__all__ = [
    "MiB",
    "VaultEmulator",
    "chunk_hashes",
    "combine_tree_hashes",
    "is_megabyte_aligned",
    "is_tree_hash_aligned",
    "tree_hash",
]

MiB = 1024 * 1024
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

_TIERS = ("Bulk", "Standard", "Expedited")
_FORMATS = ("JSON", "CSV")
_STATUS_CODES = ("InProgress", "Succeeded", "Failed")
_VAULT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_BYTE_RANGE = re.compile(r"(\d+)-(\d+)")
_HTTP_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CSV_HEADER = "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"


# --------------------------------------------------------------------------------------------
# SHA-256 tree hash ("Computing Checksums" in the Glacier Developer Guide)
# --------------------------------------------------------------------------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def chunk_hashes(data: bytes) -> list[bytes]:
    """SHA-256 digests of consecutive 1 MiB chunks (the last one may be shorter)."""
    view = memoryview(data)
    return [_sha256(view[i : i + MiB]) for i in range(0, len(data), MiB)]


def combine_tree_hashes(hashes: Sequence[bytes]) -> bytes:
    """Root of the tree built over ``hashes``: pair neighbours, promote an odd last one, repeat.

    Zero hashes (an empty payload) give SHA-256 of the empty string, as botocore does.
    """
    if not hashes:
        return _sha256(b"")
    level = list(hashes)
    while len(level) > 1:
        level = [_sha256(level[i] + level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    return level[0]


def tree_hash(data: bytes) -> str:
    """Hex SHA-256 tree hash of ``data`` over 1 MiB chunks."""
    return combine_tree_hashes(chunk_hashes(data)).hex()


def is_megabyte_aligned(start: int, end: int, size: int) -> bool:
    """Inclusive byte range [start, end] of an archive of ``size`` bytes is megabyte aligned.

    Start divisible by 1 MiB; end + 1 divisible by 1 MiB or end is the last byte of the archive.
    """
    if not 0 <= start <= end < size:
        return False
    return start % MiB == 0 and ((end + 1) % MiB == 0 or end == size - 1)


def is_tree_hash_aligned(start: int, end: int, size: int) -> bool:
    """Inclusive byte range [start, end] is tree-hash aligned with respect to an archive of ``size`` bytes.

    Per the Developer Guide: the root of the tree hash built over the range must be a node of the
    archive's tree hash. Structurally, level-L nodes of the archive tree cover the 1 MiB chunks
    [i * 2**L, min((i + 1) * 2**L, n)), so the range must start on a multiple of 2**L chunks and
    cover exactly 2**L chunks, or run to the end of the archive when fewer remain. The whole
    archive (even an empty one, [0, -1]) is always aligned: it is the root.
    """
    if size == 0:
        return start == 0 and end == -1
    if not is_megabyte_aligned(start, end, size):
        return False
    n = -(-size // MiB)
    p = start // MiB
    q = -(-(end + 1) // MiB)
    span = 1
    while p % span == 0:
        if q == min(p + span, n):
            return True
        if p + span >= n:
            return False
        span *= 2
    return False


def _iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds, as Glacier writes dates: 2012-05-15T17:21:39.339Z."""
    moment = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_iso(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


def _check_description(text: str, what: str) -> None:
    if len(text) > 1024 or any(not 0x20 <= ord(c) <= 0x7E for c in text):
        raise ValueError(f"{what} must be at most 1024 printable ASCII characters (0x20-0x7E)")


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class _GlacierError(Exception):
    def __init__(self, status: int, code: str, message: str, kind: str = "Client"):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.kind = kind

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "message": self.message, "type": self.kind}).encode()


@dataclass
class _Archive:
    archive_id: str
    vault: str
    data: bytes
    description: str
    creation_date: str
    chunks: list[bytes]
    tree_hash: str

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class _Vault:
    name: str
    creation_date: str
    archives: dict[str, _Archive] = field(default_factory=dict)
    last_change: str | None = None


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""


class VaultEmulator:
    """A threaded HTTP server on 127.0.0.1 speaking the Glacier vault REST API, with test controls.

    Attributes meant for tests:

    * ``job_delay_seconds``: a job initiated now completes this many seconds later (read at InitiateJob).
    * ``output_ttl_seconds``: a completed job (and its output) disappears this long after completion.
    * ``requests``: ``(method, raw path with query string, headers with lower-cased names)`` of every
      request received, including throttled and refused ones, in arrival order.
    * ``jobs``: job id -> job state; the public keys are the DescribeJob fields (``Tier``, ``StatusCode``,
      ``RetrievalByteRange`` ...), keys starting with ``_`` are internal (``_vault``, ``_expired`` ...).
    * ``modifications``: number of write requests refused with AccessDeniedException.
    """

    def __init__(
        self,
        job_delay_seconds: float = 0.0,
        output_ttl_seconds: float = 24 * 3600,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = DEFAULT_REGION,
    ):
        self.job_delay_seconds = job_delay_seconds
        self.output_ttl_seconds = output_ttl_seconds
        self.account_id = account_id
        self.region = region
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.modifications = 0
        # The format inventory output is written in, whatever the job asked for (None: the format asked for),
        # as when Glacier, a proxy or an old job answers in the other format.
        self.answer_inventory_in: str | None = None
        self.endpoint_url: str | None = None
        self._jobs: dict[str, dict[str, Any]] = {}
        self._vaults: dict[str, _Vault] = {}
        self._archives: dict[str, _Archive] = {}
        self._corruptions: dict[str, list[tuple[int, int]]] = {}
        self._throttle_remaining = 0
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving on 127.0.0.1 on a free port; returns the endpoint URL ``http://127.0.0.1:PORT``."""
        if self._server is not None:
            raise RuntimeError("VaultEmulator already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vault-double", daemon=True)
        self._thread.start()
        self.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> VaultEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # ---- seeding -----------------------------------------------------------------------------

    def vault_arn(self, vault: str) -> str:
        return f"arn:aws:glacier:{self.region}:{self.account_id}:vaults/{vault}"

    def create_vault(self, name: str) -> None:
        """Create a vault (idempotent, like CreateVault)."""
        if not _VAULT_NAME.fullmatch(name):
            raise ValueError(f"invalid vault name {name!r}: 1-255 of a-z, A-Z, 0-9, '_', '-', '.'")
        with self._lock:
            self._vaults.setdefault(name, _Vault(name=name, creation_date=_iso(time.time())))

    def add_archive(self, vault: str, data: bytes, description: str = "", creation_date: str | None = None) -> str:
        """Store ``data`` as a new archive in ``vault``; returns its 138-character archive id."""
        _check_description(description, "archive description")
        if creation_date is not None:
            _parse_iso(creation_date)  # must be ISO 8601
        data = bytes(data)
        chunks = chunk_hashes(data)
        with self._lock:
            if vault not in self._vaults:
                raise KeyError(f"no vault {vault!r}; call create_vault first")
            archive_id = secrets.token_urlsafe(103)  # 138 characters of [A-Za-z0-9_-], like Glacier's
            archive = _Archive(
                archive_id=archive_id,
                vault=vault,
                data=data,
                description=description,
                creation_date=creation_date or _iso(time.time()),
                chunks=chunks,
                tree_hash=combine_tree_hashes(chunks).hex(),
            )
            self._archives[archive_id] = archive
            self._vaults[vault].archives[archive_id] = archive
            self._vaults[vault].last_change = _iso(time.time())
        return archive_id

    # ---- controls ----------------------------------------------------------------------------

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """Job id -> job state (refreshed for the passage of time before returning)."""
        with self._lock:
            now = time.time()
            for job in self._jobs.values():
                self._refresh(job, now)
            return self._jobs

    def complete_jobs(self) -> None:
        """Every job still InProgress becomes Succeeded now."""
        with self._lock:
            now = time.time()
            for job in self._jobs.values():
                if job["StatusCode"] == "InProgress":
                    job["_ready_at"] = now
                self._refresh(job, now)

    def fail_job(self, job_id: str, message: str = "Job failed.") -> None:
        """The job ends as Failed (StatusCode Failed, Completed true); its output cannot be downloaded."""
        with self._lock:
            job = self._jobs[job_id]
            now = time.time()
            job.update(StatusCode="Failed", Completed=True, StatusMessage=message, CompletionDate=_iso(now))
            job["_completed_at"] = now

    def expire_job(self, job_id: str) -> None:
        """The job and its output are gone: DescribeJob and GetJobOutput answer 404 ResourceNotFoundException."""
        with self._lock:
            self._jobs[job_id]["_expired"] = True

    def corrupt_range(self, archive_id: str, offset: int, length: int = 1) -> None:
        """Job output bytes of this archive at [offset, offset + length) come back bit-flipped.

        The stored archive, its tree hashes and every ``x-amz-sha256-tree-hash`` header keep the
        original values, as if the bytes were damaged in transit; a verifying client sees a mismatch.
        """
        with self._lock:
            archive = self._archives[archive_id]
            if offset < 0 or length < 1 or offset + length > archive.size:
                raise ValueError(f"range [{offset}, {offset + length}) outside archive of {archive.size} bytes")
            self._corruptions.setdefault(archive_id, []).append((offset, length))

    def throttle(self, count: int) -> None:
        """The next ``count`` requests answer 400 ThrottlingException (botocore retries those)."""
        with self._lock:
            self._throttle_remaining += count

    # ---- job state ---------------------------------------------------------------------------

    def _refresh(self, job: dict[str, Any], now: float) -> None:
        if job["_expired"]:
            return
        if job["StatusCode"] == "InProgress" and now >= job["_ready_at"]:
            completed_at = job["_ready_at"]
            job.update(StatusCode="Succeeded", Completed=True, StatusMessage="Succeeded", CompletionDate=_iso(completed_at))
            job["_completed_at"] = completed_at
            if job["Action"] == "ArchiveRetrieval":
                job["SHA256TreeHash"] = job["_range_hash"]
            else:
                job["InventorySizeInBytes"] = len(job["_output"])
                job["InventoryRetrievalParameters"]["Marker"] = job["_next_marker"]
        if job["_completed_at"] is not None and now >= job["_completed_at"] + self.output_ttl_seconds:
            job["_expired"] = True

    def _vault(self, name: str) -> _Vault:
        vault = self._vaults.get(name)
        if vault is None:
            raise _GlacierError(404, "ResourceNotFoundException", f"Vault not found for ARN: {self.vault_arn(name)}")
        return vault

    def _job(self, vault: str, job_id: str) -> dict[str, Any]:
        self._vault(vault)
        job = self._jobs.get(job_id)
        if job is not None:
            self._refresh(job, time.time())
        if job is None or job["_vault"] != vault or job["_expired"]:
            raise _GlacierError(404, "ResourceNotFoundException", f"The job ID was not found: {job_id}")
        return job

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in job.items() if not key.startswith("_")}

    # ---- request dispatch (called from handler threads) --------------------------------------

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Response:
        with self._lock:
            self.requests.append((method, raw_path, {name.lower(): value for name, value in headers.items()}))
            if self._throttle_remaining > 0:
                self._throttle_remaining -= 1
                raise _GlacierError(400, "ThrottlingException", "Rate exceeded")
        if not headers.get("Authorization") and "X-Amz-Signature=" not in raw_path:
            raise _GlacierError(400, "MissingAuthenticationTokenException", "Missing Authentication Token")

        split = urllib.parse.urlsplit(raw_path)
        parts = [urllib.parse.unquote(part) for part in split.path.split("/")[1:]]
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if len(parts) < 2 or parts[1] != "vaults":
            if method in ("GET", "HEAD"):
                raise _GlacierError(400, "UnsupportedOperationException", f"the vault double does not emulate {method} {split.path}")
            self._refuse_write(method, parts, split.path)
        rest = parts[2:]

        if method == "POST" and len(rest) == 2 and rest[1] == "jobs":
            return self._initiate_job(rest[0], body)
        if method not in ("GET", "HEAD"):
            self._refuse_write(method, parts, split.path)
        with self._lock:
            if not rest:
                return self._list_vaults(query)
            if len(rest) == 1:
                return _json(200, self._describe_vault(self._vault(rest[0])))
            if len(rest) == 2 and rest[1] == "jobs":
                return self._list_jobs(rest[0], query)
            if len(rest) == 3 and rest[1] == "jobs":
                return _json(200, self._public(self._job(rest[0], rest[2])))
            if len(rest) == 4 and rest[1] == "jobs" and rest[3] == "output":
                return self._get_job_output(rest[0], rest[2], headers.get("Range"))
        raise _GlacierError(400, "UnsupportedOperationException", f"the vault double does not emulate {method} {split.path}")

    def _refuse_write(self, method: str, parts: list[str], path: str) -> None:
        rest = parts[2:] if len(parts) >= 2 and parts[1] == "vaults" else []
        action = {
            ("DELETE", 1): "DeleteVault",
            ("PUT", 1): "CreateVault",
        }.get((method, len(rest)))
        if action is None and len(rest) >= 2:
            action = {
                ("DELETE", "archives"): "DeleteArchive",
                ("POST", "archives"): "UploadArchive",
                ("POST", "multipart-uploads"): "InitiateMultipartUpload",
                ("PUT", "multipart-uploads"): "UploadMultipartPart",
                ("DELETE", "multipart-uploads"): "AbortMultipartUpload",
            }.get((method, rest[1]))
        resource = self.vault_arn(rest[0]) if rest else f"arn:aws:glacier:{self.region}:{self.account_id}:{path}"
        with self._lock:
            self.modifications += 1
        raise _GlacierError(
            403,
            "AccessDeniedException",
            f"User: arn:aws:iam::{self.account_id}:user/vault-double is not authorized to perform: "
            f"glacier:{action or method + ' ' + path} on resource: {resource} (the vault double is read-only)",
        )

    # ---- operations --------------------------------------------------------------------------

    def _describe_vault(self, vault: _Vault) -> dict[str, Any]:
        has_inventory = vault.last_change is not None
        return {
            "CreationDate": vault.creation_date,
            "LastInventoryDate": vault.last_change,
            "NumberOfArchives": len(vault.archives) if has_inventory else None,
            "SizeInBytes": sum(a.size for a in vault.archives.values()) if has_inventory else None,
            "VaultARN": self.vault_arn(vault.name),
            "VaultName": vault.name,
        }

    def _list_vaults(self, query: dict[str, str]) -> _Response:
        limit = _limit(query.get("limit"), default=10, maximum=1000)
        names = sorted(self._vaults)
        marker = query.get("marker")
        if marker:
            arns = [self.vault_arn(name) for name in names]
            if marker not in arns:
                raise _GlacierError(400, "InvalidParameterValueException", f"Invalid marker: {marker}")
            names = names[arns.index(marker) + 1 :]
        page = names[:limit]
        next_marker = self.vault_arn(page[-1]) if len(names) > limit else None
        return _json(200, {"Marker": next_marker, "VaultList": [self._describe_vault(self._vaults[n]) for n in page]})

    def _list_jobs(self, vault: str, query: dict[str, str]) -> _Response:
        self._vault(vault)
        limit = _limit(query.get("limit"), default=50, maximum=50)
        status = query.get("statuscode")
        if status is not None and status not in _STATUS_CODES:
            raise _GlacierError(400, "InvalidParameterValueException", f"The job status code is not valid: {status}")
        completed = query.get("completed")
        if completed is not None and completed not in ("true", "false"):
            raise _GlacierError(400, "InvalidParameterValueException", f"The completed value is not valid: {completed}")
        now = time.time()
        listed = []
        for job in self._jobs.values():
            self._refresh(job, now)
            if job["_vault"] != vault or job["_expired"]:
                continue
            if status is not None and job["StatusCode"] != status:
                continue
            if completed is not None and job["Completed"] != (completed == "true"):
                continue
            listed.append(job)
        marker = query.get("marker")
        if marker:
            ids = [job["JobId"] for job in listed]
            if marker not in ids:
                raise _GlacierError(400, "InvalidParameterValueException", f"Invalid marker: {marker}")
            listed = listed[ids.index(marker) :]
        page, remainder = listed[:limit], listed[limit:]
        return _json(200, {"JobList": [self._public(job) for job in page], "Marker": remainder[0]["JobId"] if remainder else None})

    def _initiate_job(self, vault_name: str, body: bytes) -> _Response:
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise _GlacierError(400, "SerializationException", f"Could not parse the request body: {exc}") from exc
        if not isinstance(params, dict):
            raise _GlacierError(400, "SerializationException", "The request body must be a JSON object")
        job_type = params.get("Type")
        if not job_type:
            raise _GlacierError(400, "MissingParameterValueException", "Required parameter missing: Type")
        description = params.get("Description")
        if description is not None:
            try:
                _check_description(description, "Description")
            except ValueError as exc:
                raise _GlacierError(400, "InvalidParameterValueException", str(exc)) from exc
        tier = params.get("Tier")
        if tier is not None and tier not in _TIERS:
            raise _GlacierError(400, "InvalidParameterValueException", f"Invalid tier: {tier}")

        with self._lock:
            vault = self._vault(vault_name)
            now = time.time()
            job_id = secrets.token_urlsafe(69)  # 92 characters, like Glacier job ids
            job: dict[str, Any] = {
                "Action": None,
                "ArchiveId": None,
                "ArchiveSHA256TreeHash": None,
                "ArchiveSizeInBytes": None,
                "Completed": False,
                "CompletionDate": None,
                "CreationDate": _iso(now),
                "InventoryRetrievalParameters": None,
                "InventorySizeInBytes": None,
                "JobDescription": description,
                "JobId": job_id,
                "RetrievalByteRange": None,
                "SHA256TreeHash": None,
                "SNSTopic": params.get("SNSTopic"),
                "StatusCode": "InProgress",
                "StatusMessage": "Operation in progress.",
                "Tier": None,
                "VaultARN": self.vault_arn(vault_name),
                "_vault": vault_name,
                "_ready_at": now + max(0.0, float(self.job_delay_seconds)),
                "_completed_at": None,
                "_expired": False,
                "_output": None,
                "_content_type": None,
                "_range": None,
                "_range_aligned": False,
                "_range_hash": None,
                "_next_marker": None,
            }
            if job_type == "archive-retrieval":
                self._prepare_archive_job(job, vault, params, tier)
            elif job_type == "inventory-retrieval":
                self._prepare_inventory_job(job, vault, params, tier, now)
            elif job_type == "select":
                raise _GlacierError(400, "InvalidParameterValueException", "the vault double does not emulate select jobs")
            else:
                raise _GlacierError(400, "InvalidParameterValueException", f"Invalid job type: {job_type}")
            self._jobs[job_id] = job
            self._refresh(job, now)
        return _Response(
            202,
            {"Location": f"/{self.account_id}/vaults/{vault_name}/jobs/{job_id}", "x-amz-job-id": job_id},
        )

    def _prepare_archive_job(self, job: dict[str, Any], vault: _Vault, params: dict[str, Any], tier: str | None) -> None:
        if params.get("Format") is not None or params.get("InventoryRetrievalParameters") is not None:
            raise _GlacierError(400, "InvalidParameterValueException", "Inventory parameters are not valid for archive-retrieval jobs")
        archive_id = params.get("ArchiveId")
        if not archive_id:
            raise _GlacierError(400, "MissingParameterValueException", "Required parameter missing: ArchiveId")
        archive = vault.archives.get(archive_id)
        if archive is None:
            raise _GlacierError(404, "ResourceNotFoundException", f"The archive ID was not found: {archive_id}")
        size = archive.size
        requested = params.get("RetrievalByteRange")
        if requested is None:
            start, end = 0, size - 1
        else:
            match = _BYTE_RANGE.fullmatch(str(requested))
            if not match or not is_megabyte_aligned(int(match[1]), int(match[2]), size):
                raise _GlacierError(
                    400,
                    "InvalidParameterValueException",
                    f"The specified byte range is not megabyte aligned or is outside the archive of {size} bytes: {requested}",
                )
            start, end = int(match[1]), int(match[2])
        aligned = is_tree_hash_aligned(start, end, size)
        range_hash = combine_tree_hashes(archive.chunks[start // MiB : -(-(end + 1) // MiB)]).hex() if aligned else None
        whole = start == 0 and end == size - 1
        job.update(
            Action="ArchiveRetrieval",
            ArchiveId=archive_id,
            ArchiveSHA256TreeHash=archive.tree_hash,
            ArchiveSizeInBytes=size,
            RetrievalByteRange=f"{start}-{end}",
            # Documented: null for unaligned ranges, and for the whole archive while InProgress.
            SHA256TreeHash=None if whole else range_hash,
            Tier=tier or "Standard",
        )
        job.update(_range=(start, end), _range_aligned=aligned, _range_hash=range_hash, _content_type="application/octet-stream")

    def _prepare_inventory_job(self, job: dict[str, Any], vault: _Vault, params: dict[str, Any], tier: str | None, now: float) -> None:
        if params.get("ArchiveId") is not None or params.get("RetrievalByteRange") is not None:
            raise _GlacierError(
                400, "InvalidParameterValueException", "ArchiveId and RetrievalByteRange are not valid for inventory-retrieval jobs"
            )
        fmt = params.get("Format") or "JSON"
        if fmt not in _FORMATS:
            raise _GlacierError(400, "InvalidParameterValueException", f"Invalid format: {fmt}")
        ranged = params.get("InventoryRetrievalParameters") or {}
        archives = list(vault.archives.values())
        try:
            if ranged.get("StartDate"):
                start_date = _parse_iso(ranged["StartDate"])
                archives = [a for a in archives if _parse_iso(a.creation_date) >= start_date]
            if ranged.get("EndDate"):
                end_date = _parse_iso(ranged["EndDate"])
                archives = [a for a in archives if _parse_iso(a.creation_date) < end_date]
        except ValueError as exc:
            raise _GlacierError(400, "InvalidParameterValueException", f"Invalid date: {exc}") from exc
        marker = ranged.get("Marker")
        if marker:
            ids = [a.archive_id for a in archives]
            if marker not in ids:
                raise _GlacierError(400, "InvalidParameterValueException", f"Invalid marker: {marker}")
            archives = archives[ids.index(marker) :]
        next_marker = None
        if ranged.get("Limit") is not None:
            limit = _limit(str(ranged["Limit"]), default=0, maximum=None)
            if len(archives) > limit:
                next_marker = archives[limit].archive_id
            archives = archives[:limit]

        if (self.answer_inventory_in or fmt) == "JSON":
            document = {
                "VaultARN": self.vault_arn(vault.name),
                "InventoryDate": _iso(now),
                "ArchiveList": [
                    {
                        "ArchiveId": a.archive_id,
                        "ArchiveDescription": a.description,
                        "CreationDate": a.creation_date,
                        "Size": a.size,
                        "SHA256TreeHash": a.tree_hash,
                    }
                    for a in archives
                ],
            }
            output, content_type = json.dumps(document).encode(), "application/json"
        else:
            # Developer Guide, Get Job Output: the description is enclosed in double quotes, a double
            # quote inside it is escaped with a backslash, and a backslash itself is not escaped.
            lines = [_CSV_HEADER]
            for a in archives:
                quoted = '"' + a.description.replace('"', '\\"') + '"'
                lines.append(f"{a.archive_id},{quoted},{a.creation_date},{a.size},{a.tree_hash}")
            output, content_type = ("\n".join(lines) + "\n").encode("ascii"), "text/csv"

        job.update(
            Action="InventoryRetrieval",
            InventoryRetrievalParameters={
                "EndDate": ranged.get("EndDate"),
                "Format": fmt,
                "Limit": None if ranged.get("Limit") is None else str(ranged["Limit"]),
                "Marker": None,  # the marker to continue with, once the job has completed
                "StartDate": ranged.get("StartDate"),
            },
            Tier=tier,
        )
        job.update(_output=output, _content_type=content_type, _next_marker=next_marker)

    def _get_job_output(self, vault: str, job_id: str, range_header: str | None) -> _Response:
        job = self._job(vault, job_id)
        if job["StatusCode"] != "Succeeded":
            raise _GlacierError(400, "InvalidParameterValueException", f"The job is not currently available for download: {job_id}")
        archive: _Archive | None = None
        if job["Action"] == "ArchiveRetrieval":
            archive = self._archives[job["ArchiveId"]]
            base, last = job["_range"]
            total = last - base + 1
        else:
            base, total = 0, len(job["_output"])

        if range_header is None:
            first, end = 0, total - 1
        else:
            first, end = _parse_http_range(range_header, total)
        whole = first == 0 and end == total - 1

        headers = {"Content-Type": job["_content_type"], "Accept-Ranges": "bytes"}
        status = 200
        if range_header is not None:
            status = 206
            headers["Content-Range"] = f"bytes {first}-{end}/{total}"

        if archive is None:
            return _Response(status, headers, job["_output"][first : end + 1])

        lo, hi = base + first, base + end  # inclusive, archive coordinates
        payload = bytearray(archive.data[lo : hi + 1])
        for offset, length in self._corruptions.get(archive.archive_id, ()):
            for position in range(max(offset, lo), min(offset + length, hi + 1)):
                payload[position - lo] ^= 0xFF
        if job["_range_aligned"]:
            if whole:
                headers["x-amz-sha256-tree-hash"] = job["_range_hash"]
            elif is_tree_hash_aligned(lo, hi, archive.size):
                headers["x-amz-sha256-tree-hash"] = combine_tree_hashes(archive.chunks[lo // MiB : -(-(hi + 1) // MiB)]).hex()
        if archive.description:
            headers["x-amz-archive-description"] = archive.description
        return _Response(status, headers, bytes(payload))


def _limit(value: str | None, *, default: int, maximum: int | None) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or (maximum is not None and number > maximum):
        raise _GlacierError(400, "InvalidParameterValueException", f"Invalid limit: {value}")
    return number


def _parse_http_range(value: str, total: int) -> tuple[int, int]:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` against an output of ``total`` bytes; inclusive bounds."""
    match = _HTTP_RANGE.fullmatch(value.strip())
    if not match or (match[1] == "" and match[2] == ""):
        raise _GlacierError(400, "InvalidParameterValueException", f"Invalid range header: {value}")
    if match[1] == "":
        suffix = int(match[2])
        first, end = max(0, total - suffix), total - 1
        if suffix == 0:
            first, end = total, total - 1
    else:
        first = int(match[1])
        end = min(int(match[2]), total - 1) if match[2] else total - 1
    if first > end or first >= total:
        raise _GlacierError(416, "InvalidParameterValueException", f"Requested range not satisfiable: {value} (output is {total} bytes)")
    return first, end


def _json(status: int, document: Any) -> _Response:
    return _Response(status, {"Content-Type": "application/json"}, json.dumps(document).encode())


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: VaultEmulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VaultDouble/1.0"
    disable_nagle_algorithm = True  # small JSON answers would otherwise wait ~40 ms for the delayed ACK
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        pass

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, False)

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            pieces = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        body = self._read_body()
        try:
            response = self.server.emulator._dispatch(method, self.path, self.headers, body)
        except _GlacierError as error:
            response = _Response(error.status, {"Content-Type": "application/json"}, error.body())
        except Exception:  # a bug in the double: say so loudly, as a Glacier-shaped server error
            message = "vault double internal error: " + traceback.format_exc(limit=5)
            error = _GlacierError(500, "ServiceUnavailableException", message, "Server")
            response = _Response(500, {"Content-Type": "application/json"}, error.body())
        try:
            self.send_response(response.status)
            self.send_header("x-amzn-RequestId", secrets.token_urlsafe(36))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if method != "HEAD" and response.body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
