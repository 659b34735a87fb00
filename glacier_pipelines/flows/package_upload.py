"""Uploading a package: a local file already hashed, or a multipart upload fed while the tar is being written.

Streaming the tar as it is built overlaps the two longest parts of closing a package (writing
the tar, and S3 receiving it) and saves reading the tar back: on 10,000 small files the
upload was most of the close step.
"""

from __future__ import annotations

import dataclasses
import queue
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from glacier_pipelines.core import checksums, transfer
from glacier_pipelines.core.constants import MiB

PACKAGE_PART_SIZE = 8 * MiB
FEED_CHUNK = MiB  # the tar's many small writes (512-byte headers, member data) go to the upload in pieces of this size
FEED_DEPTH = 8  # pieces waiting for the upload: at most this much more memory, and the tar's writer waits beyond it


def package_settings(upload: transfer.UploadSettings) -> transfer.UploadSettings:
    """Smaller parts than a large file's: the part buffers (concurrency + 1 of them) were the close step's peak
    memory, and a package's few dozen parts cost nothing next to the thousands of objects it replaces."""
    return dataclasses.replace(upload, part_size=min(upload.part_size, PACKAGE_PART_SIZE))


def upload_package_file(setup: Any, path: Path, key: str, sha256_hex: str, size: int) -> str:
    """Upload a local file already hashed: one PUT, or a verified multipart stream for a large package."""
    if size <= setup.upload.multipart_threshold:
        stage = {
            "kind": "file",
            "path": str(path),
            "bucket": setup.upload.bucket,
            "key": key,
            "s3_checksum": checksums.b64(bytes.fromhex(sha256_hex)),
        }
    else:

        def chunks():
            with open(path, "rb") as f:
                yield from iter(lambda: f.read(MiB), b"")

        stage = transfer.stage_stream(
            chunks(),
            stores=setup.objects,
            settings=package_settings(setup.upload),
            key=key,
            algorithm="SHA-256",
            expected_checksum=sha256_hex,
            staging_path=path.with_suffix(".unused"),
        ).stage
    return transfer.commit_stage(setup.objects, setup.upload, stage)["s3_checksum"]


class _Abort(Exception):
    """Ends the upload's stream: the tar could not be built as recorded."""


class StreamedUpload:
    """A package's multipart upload, fed by ``write`` as its tar is built (``transfer.stage_stream`` on a thread of its own).

    Nothing is stored until ``complete``: the caller first checks the built tar (every member at its
    recorded offset), then completes, or ``abort``s. Each part carries its checksum, which S3 checks;
    the whole stream's SHA-256 must be the one the tar's writer computed.
    """

    def __init__(self, setup: Any, key: str, tar_path: Path):
        self.setup, self.key = setup, key
        self.pieces: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=FEED_DEPTH)
        self.pending = bytearray()
        self.sha256_hex = ""
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="package-upload")
        self.future = self.pool.submit(
            transfer.stage_stream,
            self._stream(),
            stores=setup.objects,
            settings=package_settings(setup.upload),
            key=key,
            algorithm="SHA-256",
            expected_checksum=lambda: self.sha256_hex,  # known once the tar is written, before the stream ends
            staging_path=tar_path.with_suffix(".unused"),
        )

    def _stream(self):
        while (piece := self.pieces.get()) is not None:
            if isinstance(piece, BaseException):
                raise piece
            yield piece

    def _put(self, piece: bytes | BaseException | None) -> None:
        while True:
            try:
                self.pieces.put(piece, timeout=0.5)
                return
            except queue.Full:
                if self.future.done():  # the upload failed: its error, not a writer waiting forever
                    self.future.result()
                    raise transfer.transfer_error(f"the upload of {self.key} ended before its package was written") from None

    def write(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) >= FEED_CHUNK:
            self._put(bytes(self.pending))
            self.pending.clear()

    def complete(self, sha256_hex: str) -> str:
        """End the stream (the tar's SHA-256 as written), complete the upload; returns the object's S3 checksum."""
        if self.pending:
            self._put(bytes(self.pending))
            self.pending.clear()
        self.sha256_hex = sha256_hex
        self._put(None)
        try:
            stage = self.future.result().stage
        finally:
            self.pool.shutdown(wait=True)
        return transfer.commit_stage(self.setup.objects, self.setup.upload, stage)["s3_checksum"]

    def abort(self) -> None:
        """Stop the stream; stage_stream aborts the multipart upload. Never raises: the caller is already handling a failure."""
        if not self.future.done():
            try:
                self._put(_Abort("package build stopped"))
            except Exception:  # noqa: BLE001  (the upload failed on its own: nothing left to stop)
                pass
        try:
            self.future.result()
        except BaseException:  # noqa: BLE001  (the abort's own _Abort, or the upload's failure: both end it)
            pass
        self.pool.shutdown(wait=True)
