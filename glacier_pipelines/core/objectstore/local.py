"""``LocalStore``: the port over a folder, for the embedded default and for staging.

It keeps S3's semantics where callers can tell: storage classes, GLACIER and DEEP_ARCHIVE
refusing reads until restored (after ``restore_delay``), checksums validated on every put and
part (BadDigest), multipart composites, metadata directives, listing in key order. How files
are laid out is in ``localfs``. What it cannot do is in ``LOCAL``: a presigned URL is a
``file://`` URL, which nothing can make expire.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from glacier_pipelines.core.constants import TIERS_BY_CLASS, UNREADABLE_CLASSES
from glacier_pipelines.core.objectstore import base, local_copy, localfs
from glacier_pipelines.core.objectstore.base import (
    Body,
    Capabilities,
    ObjectBody,
    ObjectEntry,
    ObjectHead,
    PutResult,
    RestoreOutcome,
    RestoreStatus,
)
from glacier_pipelines.core.objectstore.errors import StoreError, refusal
from glacier_pipelines.core.objectstore.local_multipart import LocalMultipart
from glacier_pipelines.core.objectstore.localfs import Temporary, check_key

LOCAL = Capabilities(presign_expires=False, keys_nest=False)


def _now() -> datetime:
    return datetime.now(UTC)


class LocalStore:
    """A folder holding objects. ``durable`` fsyncs every write before answering (as S3 is durable once it answers);
    ``restore_delay`` is how long a restore runs (0: at once, like moto); ``clock`` tells the time (tests move it)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        durable: bool = True,
        restore_delay: timedelta = timedelta(0),
        clock: Callable[[], datetime] = _now,
    ):
        self._root = os.path.abspath(os.fspath(root))  # a string: a store is made per staged file, pathlib showed in profiles
        self.durable, self.restore_delay, self.clock = durable, restore_delay, clock
        self.capabilities = LOCAL
        self._multipart = LocalMultipart(self)

    @property
    def root(self) -> Path:
        return Path(self._root)

    def __repr__(self) -> str:
        return f"LocalStore({self._root!r})"

    def path(self, key: str, operation: str, *, creating: bool = False) -> str:
        return os.path.join(self._root, check_key(key, operation, creating=creating))

    # -- reading ---------------------------------------------------------------------------------------------------

    def _restore_status(self, meta: dict[str, Any] | None) -> RestoreStatus | None:
        restore = (meta or {}).get("restore")
        if not restore:
            return None
        now, expiry = self.clock(), datetime.fromisoformat(restore["expiry"])
        if now < datetime.fromisoformat(restore["ready_at"]):
            return RestoreStatus(ongoing=True)
        return RestoreStatus(ongoing=False, expiry=expiry) if now < expiry else None

    def _readable(self, meta: dict[str, Any] | None) -> bool:
        if (meta or {}).get("storage_class") not in UNREADABLE_CLASSES:
            return True
        status = self._restore_status(meta)
        return status is not None and not status.ongoing

    def _open(self, key: str, operation: str) -> tuple[str, Any, os.stat_result, dict[str, Any] | None]:
        path = self.path(key, operation)
        try:
            f = open(path, "rb")  # noqa: SIM115 (handed to the caller as the body, or closed here)
        except OSError as exc:
            raise localfs.wrap_os(exc, operation, key) from exc
        st = os.fstat(f.fileno())
        try:
            return path, f, st, localfs.read_sidecar(path, st.st_ino)
        except BaseException:
            f.close()
            raise

    def head(self, key: str, *, checksum: bool = False) -> ObjectHead:
        _, f, st, meta = self._open(key, "HeadObject")
        with f:
            meta = meta or {}
            sums: dict[str, str] = {}
            if checksum:
                recorded = meta.get("checksum")
                if recorded:
                    sums = {recorded["algorithm"]: recorded["value"]}
                elif not meta.get("parts"):  # a single-part object's SHA-256 is its bytes'
                    sums = {"SHA256": localfs.b64(localfs.file_digest(f, "SHA256", "HeadObject", key))}
            return ObjectHead(
                key=key,
                size=st.st_size,
                etag=localfs.fingerprint(st, meta.get("parts")),
                storage_class=meta.get("storage_class", "STANDARD"),
                last_modified=localfs.mtime(st),
                metadata=dict(meta.get("metadata", {})),
                checksums=sums,
                restore=self._restore_status(meta),
                sse=meta.get("sse"),
                kms_key_id=meta.get("kms_key_id"),
                bucket_key=meta.get("bucket_key"),
                checksum_type=("COMPOSITE" if meta.get("parts") else "FULL_OBJECT") if sums else None,
                headers=dict(meta.get("headers", {})),
            )

    def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None, if_match: str | None = None) -> ObjectBody:
        base.check_range(byte_range)
        _, f, st, meta = self._open(key, "GetObject")
        try:
            localfs.check_etag(localfs.fingerprint(st, (meta or {}).get("parts")), if_match, "GetObject", key)
            if not self._readable(meta):
                raise refusal("InvalidObjectState", 403, "The operation is not valid for the object's storage class", "GetObject", key)
            size, content_range, body = st.st_size, None, f
            if byte_range is not None:
                start, end = byte_range
                if start >= st.st_size:
                    raise refusal("InvalidRange", 416, "The requested range is not satisfiable", "GetObject", key)
                last = st.st_size - 1 if end is None else min(end, st.st_size - 1)
                f.seek(start)
                size, content_range, body = last - start + 1, (start, last), local_copy.Window(f, last - start + 1)
        except BaseException:
            f.close()
            raise
        meta = meta or {}
        return ObjectBody(
            key=key,
            body=body,
            size=size,
            total_size=st.st_size,
            etag=localfs.fingerprint(st, meta.get("parts")),
            storage_class=meta.get("storage_class", "STANDARD"),
            metadata=dict(meta.get("metadata", {})),
            content_range=content_range,
        )

    def tags(self, key: str) -> dict[str, str]:
        """The tags the object was given (a multipart upload's ``tags``, kept by copies)."""
        _, f, _, meta = self._open(key, "GetObjectTagging")
        f.close()
        return dict((meta or {}).get("tags", {}))

    # -- writing ---------------------------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        body: Body,
        *,
        storage_class: str = "STANDARD",
        metadata: Mapping[str, str] | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        checksum_algorithm: str | None = None,
        checksum: str | None = None,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PutResult:
        algorithm = base.check_object_args(storage_class, sse, checksum_algorithm, checksum)
        del content_type  # a header S3 serves the object with: a file has none, and nothing here reads it back
        extra = {"tags": dict(tags)} if tags else None  # in the sidecar, as a multipart upload's tags are
        path = self.path(key, "PutObject", creating=True)
        digest = localfs.hasher(algorithm, "PutObject", key) if algorithm else None
        try:
            with Temporary(path) as tmp:
                tmp.write_body(body, digest)
                st = tmp.finish(self.durable)
                value = localfs.b64(digest.digest()) if digest is not None else None
                if checksum is not None and value != checksum:
                    raise refusal(
                        "BadDigest", 400, f"The {algorithm} you specified did not match the calculated checksum.", "PutObject", key
                    )
                meta = localfs.object_meta(
                    storage_class, metadata, sse, kms_key_id, (algorithm, value) if algorithm and value else None, extra=extra
                )
                self.install(tmp, meta, st)
        except OSError as exc:
            raise localfs.wrap_os(exc, "PutObject", key) from exc
        return PutResult(
            etag=localfs.fingerprint(st, (meta or {}).get("parts")), checksums={algorithm: value} if algorithm and value else {}
        )

    def install(self, tmp: Temporary, meta: dict[str, Any] | None, st: os.stat_result) -> None:
        """Rename finished bytes into place: their sidecar first (named by their inode), the replaced object's sidecar after."""
        localfs.write_sidecar(tmp.target, st.st_ino, meta, self.durable)
        try:
            replaced: int | None = os.stat(tmp.target).st_ino
        except (FileNotFoundError, NotADirectoryError):
            replaced = None
        tmp.commit(self.durable)
        if replaced is not None and replaced != st.st_ino:
            localfs.unlink(localfs.sidecar_path(tmp.target, replaced))

    def copy(
        self,
        source: str,
        key: str,
        *,
        storage_class: str | None = None,
        metadata: Mapping[str, str] | None = None,
        metadata_directive: Literal["COPY", "REPLACE"] = "COPY",
        sse: str | None = None,
        kms_key_id: str | None = None,
        bucket_key: bool | None = None,
        checksum_algorithm: str | None = None,
        source_store: base.ObjectStore | None = None,
        if_match: str | None = None,
    ) -> PutResult:
        """Like CopyObject (local_copy.py): STANDARD unless ``storage_class`` says otherwise, not restored, tags kept."""
        return local_copy.copy(
            self,
            source,
            key,
            storage_class=storage_class,
            metadata=metadata,
            metadata_directive=metadata_directive,
            sse=sse,
            kms_key_id=kms_key_id,
            bucket_key=bucket_key,
            checksum_algorithm=checksum_algorithm,
            source_store=source_store,
            if_match=if_match,
        )

    def upload_part_copy(
        self,
        upload: base.Upload,
        number: int,
        source: str,
        byte_range: tuple[int, int],
        *,
        source_store: base.ObjectStore | None = None,
        if_match: str | None = None,
    ) -> base.Part:
        return local_copy.upload_part_copy(self, upload, number, source, byte_range, source_store=source_store, if_match=if_match)

    def restore(self, key: str, *, days: int, tier: str = "Standard") -> RestoreOutcome:
        """Start a restore that completes after ``restore_delay``; extend a finished one; a running one is left alone."""
        base.check_restore_args(days, tier)
        path, f, st, meta = self._open(key, "RestoreObject")
        f.close()
        storage_class = (meta or {}).get("storage_class", "STANDARD")
        if meta is None or storage_class not in UNREADABLE_CLASSES:
            raise refusal("InvalidObjectState", 403, "Restore is not allowed for the object's current storage class", "RestoreObject", key)
        if tier not in TIERS_BY_CLASS[storage_class]:
            raise refusal("InvalidArgument", 400, f"{tier} retrieval is not available for {storage_class}", "RestoreObject", key)
        status, now = self._restore_status(meta), self.clock()
        if status is not None and status.ongoing:
            return "in_progress"
        if status is not None:
            meta["restore"] = {**meta["restore"], "expiry": (now + timedelta(days=days)).isoformat()}
            outcome: RestoreOutcome = "extended"
        else:
            ready = now + self.restore_delay
            meta["restore"] = {"tier": tier, "ready_at": ready.isoformat(), "expiry": (ready + timedelta(days=days)).isoformat()}
            outcome = "started"
        try:
            localfs.write_sidecar(path, st.st_ino, meta, self.durable)
        except OSError as exc:
            raise localfs.wrap_os(exc, "RestoreObject", key) from exc
        return outcome

    def delete(self, keys: str | Iterable[str]) -> None:
        """Remove the objects and their sidecars; a missing key is not an error (as in S3)."""
        for key in [keys] if isinstance(keys, str) else keys:
            path = self.path(key, "DeleteObject")
            try:
                ino = os.stat(path).st_ino
                os.unlink(path)
                localfs.unlink(localfs.sidecar_path(path, ino))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise localfs.wrap_os(exc, "DeleteObject", key) from exc

    # -- multipart (local_multipart.py) ------------------------------------------------------------------------------

    def begin(
        self,
        key: str,
        *,
        storage_class: str = "STANDARD",
        metadata: Mapping[str, str] | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        checksum_algorithm: str | None = "SHA256",
        bucket_key: bool | None = None,
        tags: Mapping[str, str] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> base.Upload:
        extra = {"tags": dict(tags or {}), "headers": {h: str(v) for h, v in (headers or {}).items() if v}, "bucket_key": bucket_key}
        return self._multipart.begin(
            key,
            storage_class=storage_class,
            metadata=metadata,
            sse=sse,
            kms_key_id=kms_key_id,
            checksum_algorithm=checksum_algorithm,
            extra=extra,
        )

    def upload_part(
        self, upload: base.Upload, number: int, data: bytes | bytearray | memoryview, *, checksum: str | None = None
    ) -> base.Part:
        return self._multipart.upload_part(upload, number, data, checksum=checksum)

    def complete(self, upload: base.Upload, parts: Sequence[base.Part]) -> PutResult:
        return self._multipart.complete(upload, parts)

    def abort(self, upload: base.Upload) -> None:
        self._multipart.abort(upload)

    def parts(self, upload: base.Upload) -> Iterator[base.Part]:
        return self._multipart.parts(upload)

    def uploads(self, prefix: str = "") -> Iterator[base.PendingUpload]:
        return self._multipart.uploads(prefix)

    # -- listing and links -----------------------------------------------------------------------------------------

    def list(self, prefix: str = "", *, start_after: str | None = None, page_size: int = base.LIST_PAGE) -> Iterator[ObjectEntry]:
        """Every key under ``prefix`` in S3's order (by UTF-8 bytes). The folder is walked once, when iteration starts."""
        if not 1 <= page_size <= base.LIST_PAGE:
            raise ValueError(f"page size {page_size} is not between 1 and {base.LIST_PAGE}")
        for key, entry, sidecars in self._scan(prefix, partial=False):
            if start_after is not None and key <= start_after:
                continue
            st = entry.stat(follow_symlinks=False)
            name = f"{localfs.RESERVED}-{st.st_ino}.json"
            meta = localfs.read_sidecar(entry.path, st.st_ino) if name in sidecars else None
            yield ObjectEntry(
                key=key,
                size=st.st_size,
                etag=localfs.fingerprint(st, (meta or {}).get("parts")),
                last_modified=localfs.mtime(st),
                storage_class=(meta or {}).get("storage_class", "STANDARD"),
            )

    def partial_writes(self, prefix: str = "") -> Iterator[ObjectEntry]:
        """Writes a killed process left half done (``.objectstore-*.part``): for a sweeper, which may ``delete`` them."""
        for key, entry, _ in self._scan(prefix, partial=True):
            st = entry.stat(follow_symlinks=False)
            yield ObjectEntry(
                key=key, size=st.st_size, etag=localfs.fingerprint(st), last_modified=localfs.mtime(st), storage_class="STANDARD"
            )

    def _scan(self, prefix: str, *, partial: bool) -> builtins.list[tuple[str, os.DirEntry[str], set[str]]]:
        folder = prefix.rpartition("/")[0]
        if folder:
            check_key(folder, "ListObjectsV2", creating=False)
        found: builtins.list[tuple[str, os.DirEntry[str], set[str]]] = []
        pending = [(os.path.join(self._root, folder) if folder else self._root, f"{folder}/" if folder else "")]
        while pending:
            path, rel = pending.pop()
            try:
                with os.scandir(path) as it:
                    entries = builtins.list(it)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StoreError.wrap(exc, "ListObjectsV2", prefix) from exc
            names = {e.name for e in entries}
            for e in entries:
                key = rel + e.name
                if localfs.is_reserved(e.name):
                    if partial and localfs.is_partial(e.name) and key.startswith(prefix) and e.is_file(follow_symlinks=False):
                        found.append((key, e, names))
                elif e.is_dir(follow_symlinks=False):
                    if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append((e.path, key + "/"))
                elif not partial and e.is_file(follow_symlinks=False) and key.startswith(prefix):
                    found.append((key, e, names))
        found.sort(key=lambda item: item[0].encode("utf-8"))
        return found

    def presign(self, key: str, *, expires_in: int = 3600) -> str:
        """A ``file://`` URL of the object (readable by anyone who can read the folder; it never expires)."""
        base.check_presign_args(expires_in)
        return Path(self.path(key, "PresignGetObject")).as_uri()
