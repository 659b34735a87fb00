"""The stream cut into parts: reading ahead of the source, reused part buffers, parts uploaded on a small pool."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from glacier_pipelines.core import checksums
from glacier_pipelines.core.objectstore import ObjectStore
from glacier_pipelines.core.transfer.uploads import UploadSettings, transfer_error


def read_ahead(chunks: Iterable[bytes], depth: int = 4) -> Iterator[bytes]:
    """Iterate ``chunks`` on a background thread, at most ``depth`` chunks ahead.

    The source's network reads then overlap with the hashing and part uploads of the caller;
    an exception of the source is raised here, in order, and stopping early stops the reader.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    reader = threading.Thread(target=pump, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


class _PartUploader:
    """Uploads parts on a small thread pool, never holding more than ``max_concurrency`` in flight.

    One CreateMultipartUpload, then one UploadPart per part (with its CRC32, which the store checks): nothing more.
    """

    def __init__(self, store: ObjectStore, settings: UploadSettings, key: str, metadata: dict[str, str]):
        self.store, self.settings, self.key = store, settings, key
        self.upload = store.begin(key, metadata=metadata, checksum_algorithm="CRC32", **settings.store_args())
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="part")
        self._slots = threading.Semaphore(settings.max_concurrency)
        self._futures: list[Future[dict[str, Any]]] = []

    @property
    def upload_id(self) -> str:
        return self.upload.upload_id

    def _upload(self, number: int, data: bytes | bytearray, done: Any) -> dict[str, Any]:
        try:
            # CRC32, not SHA-256: S3 still rejects a corrupted part (BadDigest), at a third of the CPU;
            # zlib releases the GIL, so parts are checked in parallel (docs/architecture.md).
            crc = checksums.crc32(data)
            sent = checksums.b64(crc)
            part = self.store.upload_part(self.upload, number, data, checksum=sent)
            if part.checksum is not None and part.checksum != sent:
                raise transfer_error(f"part {number}: S3 reports checksum {part.checksum}, sent {sent}")
            # The stage's JSON keeps S3's own form of a part (a quoted ETag), as CompleteMultipartUpload lists it.
            return {"PartNumber": number, "ETag": f'"{part.etag}"', "ChecksumCRC32": sent, "_digest": crc}
        finally:
            if done is not None:
                done()
            self._slots.release()

    def submit(self, data: bytes | bytearray, done: Any = None) -> None:
        """Upload ``data`` as the next part; ``done()`` is called once S3 no longer needs it (buffer reuse)."""
        # Fail fast: a part that already failed makes the rest pointless.
        for f in self._futures:
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        self._slots.acquire()
        self._futures.append(self._pool.submit(self._upload, len(self._futures) + 1, data, done))

    def finish(self) -> list[dict[str, Any]]:
        try:
            return [f.result() for f in self._futures]
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.abort(self.upload)


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Cap glibc's per-thread malloc arenas, unless MALLOC_ARENA_MAX already says otherwise.

    The archive path moves large buffers between threads (source reader, hashers, part
    uploaders); with glibc's default of up to 8 arenas per core each thread's arena keeps its
    own peak: 306 MiB peak RSS for one 1 GiB file, against 209 MiB with one arena and no
    measurable CPU cost (Python's own allocator serves small objects without glibc's lock).
    Call it early in a worker process, before its threads start; returns whether it applied.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc: nothing to cap
        return False


class _BufferPool:
    """Part buffers kept for the next multipart file instead of being freed.

    A worker archives large file after large file: new buffers would cost fresh page faults
    every time, and each 16 MiB one freed raises glibc's dynamic mmap threshold, so later
    allocations of that size stay in the heap. Buffers are made on demand and at most
    ``keep`` per size are kept, 80 MiB at the default settings once a large file has passed.
    """

    def __init__(self, keep: int = 8):
        self._free: dict[int, list[bytearray]] = {}
        self._lock = threading.Lock()
        self.keep = keep

    def take(self, size: int) -> bytearray:
        with self._lock:
            free = self._free.get(size)
            if free:
                return free.pop()
        return bytearray(size)

    def give(self, buffers: Iterable[bytearray]) -> None:
        with self._lock:
            for buf in buffers:
                free = self._free.setdefault(len(buf), [])
                if len(free) < self.keep:
                    free.append(buf)


_BUFFERS = _BufferPool()


class _PartWriter:
    """Cuts a stream into parts in reused buffers: one copy per byte, no fresh memory per part.

    Allocating a new 16 MiB ``bytes`` per part (and growing a ``bytearray`` in front of it)
    cost two copies plus a page fault per 4 KiB, about 0.5 CPU-s per GiB on these machines.
    Here at most ``max_concurrency + 1`` buffers exist: one filling, the others uploading; a
    buffer returns to the free list when its upload has ended. Each full part is hashed as a
    whole (the stream's digests, in order) before it is handed to the uploader.
    """

    def __init__(self, uploader: _PartUploader, digest: checksums.MultiDigest, part_size: int, buffers: int):
        self.uploader, self.digest, self.part_size = uploader, digest, part_size
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._made, self._limit = 0, buffers
        self._buf: bytearray | None = None
        self._view: memoryview | None = None
        self._fill = 0

    def _take(self) -> None:
        if self._free.empty() and self._made < self._limit:
            self._made += 1
            self._buf = _BUFFERS.take(self.part_size)
        else:
            self._buf = self._free.get()  # a buffer comes back as soon as one of the uploads ends
        self._view, self._fill = memoryview(self._buf), 0

    def release(self) -> None:
        """Hand every buffer back to the shared pool; only once no upload uses them any more."""
        if self._view is not None:
            self._view.release()
        held = [self._buf] if self._buf is not None else []
        while not self._free.empty():
            held.append(self._free.get())
        self._buf = self._view = None
        _BUFFERS.give(held)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        src = memoryview(data)
        while len(src):
            if self._buf is None:
                self._take()
            n = min(len(src), self.part_size - self._fill)
            self._view[self._fill : self._fill + n] = src[:n]  # type: ignore[index]
            self._fill += n
            src = src[n:]
            if self._fill == self.part_size:
                self._flush()

    def _flush(self) -> None:
        buf, view, fill = self._buf, self._view, self._fill
        self._buf = self._view = None
        assert buf is not None and view is not None
        self.digest.update(view[:fill])
        if fill == self.part_size:
            view.release()
            self.uploader.submit(buf, lambda: self._free.put(buf))
        else:  # the short last part: its own copy (a bytearray too: sent in one piece), the buffer is free again
            part = bytearray(view[:fill])
            view.release()
            self._free.put(buf)
            self.uploader.submit(part)

    def close(self) -> None:
        """Upload what is left as the last part (S3 wants at least one part, even if empty)."""
        if self._buf is not None and self._fill:
            self._flush()
        elif not self.uploader._futures:
            self.uploader.submit(b"")
