"""Multipart uploads of ``LocalStore``: parts wait in ``<root>/.objectstore-uploads/<id>/`` until complete or abort.

S3's rules are kept so that code tested on the local store behaves the same on S3: part
numbers 1-10,000, part checksums validated (BadDigest), complete takes the parts in ascending
order with the ETags (and checksums) their uploads answered (InvalidPart, InvalidPartOrder),
every part but the last at least 5 MiB (EntityTooSmall), an unknown upload is NoSuchUpload.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glacier_pipelines.core.objectstore import base, localfs
from glacier_pipelines.core.objectstore.base import Part, PendingUpload, PutResult, Upload
from glacier_pipelines.core.objectstore.errors import refusal
from glacier_pipelines.core.objectstore.localfs import Temporary, check_key

if TYPE_CHECKING:
    from glacier_pipelines.core.objectstore.local import LocalStore


class LocalMultipart:
    def __init__(self, store: LocalStore):
        self.store = store

    def _folder(self, upload: Upload, operation: str) -> tuple[Path, dict[str, Any]]:
        folder = self.store.root / localfs.UPLOADS / upload.upload_id
        try:
            if not upload.upload_id.isalnum():
                raise FileNotFoundError(upload.upload_id)
            state = json.loads((folder / "upload.json").read_text())
        except FileNotFoundError:
            state = None
        if state is None or state["key"] != upload.key:
            raise refusal("NoSuchUpload", 404, "The specified upload does not exist.", operation, upload.key)
        return folder, state

    def begin(
        self,
        key: str,
        *,
        storage_class: str = "STANDARD",
        metadata: Mapping[str, str] | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        checksum_algorithm: str | None = "SHA256",
        extra: Mapping[str, Any] | None = None,
    ) -> Upload:
        algorithm = base.check_object_args(storage_class, sse, checksum_algorithm)
        check_key(key, "CreateMultipartUpload", creating=True)
        if algorithm:
            localfs.hasher(algorithm, "CreateMultipartUpload", key)  # refused now rather than at the first part
        upload_id = secrets.token_hex(16)
        state = {
            "key": key,
            "storage_class": storage_class,
            "metadata": dict(metadata or {}),
            "sse": sse,
            "kms_key_id": kms_key_id,
            "algorithm": algorithm,
            "extra": dict(extra or {}),
            "initiated": self.store.clock().isoformat(),
        }
        try:
            localfs.write_json(self.store.root / localfs.UPLOADS / upload_id / "upload.json", state, self.store.durable)
        except OSError as exc:
            raise localfs.wrap_os(exc, "CreateMultipartUpload", key) from exc
        return Upload(key=key, upload_id=upload_id, checksum_algorithm=algorithm)

    def upload_part(self, upload: Upload, number: int, data: base.Body | Any, *, checksum: str | None = None) -> Part:
        base.check_part_number(number)
        folder, state = self._folder(upload, "UploadPart")
        algorithm = state["algorithm"]
        if checksum is not None and not algorithm:
            raise ValueError("a part checksum was given but the upload was begun without a checksum algorithm")
        digest = localfs.hasher(algorithm, "UploadPart", upload.key) if algorithm else None
        try:
            with Temporary(folder / f"part-{number:05d}") as tmp:
                tmp.write_body(data, digest)
                st = tmp.finish(self.store.durable)
                value = localfs.b64(digest.digest()) if digest is not None else None
                if checksum is not None and value != checksum:
                    raise refusal(
                        "BadDigest",
                        400,
                        f"The {algorithm} you specified for part {number} did not match the calculated checksum.",
                        "UploadPart",
                        upload.key,
                    )
                etag = localfs.fingerprint(st)  # names these very bytes (their inode): complete checks the file still has it
                tmp.commit(self.store.durable)
                localfs.write_json(folder / f"part-{number:05d}.json", {"etag": etag, "checksum": value}, self.store.durable)
        except OSError as exc:
            raise localfs.wrap_os(exc, "UploadPart", upload.key) from exc
        return Part(number=number, etag=etag, checksum=value)

    def complete(self, upload: Upload, parts: Sequence[Part]) -> PutResult:
        folder, state = self._folder(upload, "CompleteMultipartUpload")
        key, algorithm = upload.key, state["algorithm"]

        def refuse(code: str, message: str) -> Exception:
            return refusal(code, 400, message, "CompleteMultipartUpload", key)

        if not parts:
            raise refuse("MalformedXML", "The XML you provided was not well-formed: at least one part is needed")
        numbers = [p.number for p in parts]
        if numbers != sorted(set(numbers)):
            raise refuse("InvalidPartOrder", "The list of parts was not in ascending order.")
        recorded = []
        for part in parts:
            try:
                info = json.loads((folder / f"part-{part.number:05d}.json").read_text())
                st = os.stat(folder / f"part-{part.number:05d}")
                info["size"], held = st.st_size, localfs.fingerprint(st)
            except FileNotFoundError:
                info, held = None, None
            if info is None or not part.etag == info["etag"] == held or (part.checksum is not None and part.checksum != info["checksum"]):
                raise refuse(
                    "InvalidPart", f"Part {part.number} could not be found, or its ETag or checksum is not the one its upload answered."
                )
            recorded.append(info)
        if any(info["size"] < base.MIN_PART_SIZE for info in recorded[:-1]):
            raise refuse(
                "EntityTooSmall",
                f"Your proposed upload is smaller than the minimum allowed size ({base.MIN_PART_SIZE} bytes for every part but the last).",
            )
        value = (
            localfs.composite(algorithm, (base64.b64decode(i["checksum"]) for i in recorded), "CompleteMultipartUpload", key)
            if algorithm
            else None
        )
        meta = localfs.object_meta(
            state["storage_class"],
            state["metadata"],
            state["sse"],
            state["kms_key_id"],
            (algorithm, value) if value else None,
            parts=len(parts),
            extra=state.get("extra"),
        )
        target = self.store.path(key, "CompleteMultipartUpload", creating=True)
        try:
            with Temporary(target) as tmp:
                for part in parts:
                    with open(folder / f"part-{part.number:05d}", "rb") as f:
                        shutil.copyfileobj(f, tmp.file, localfs.CHUNK)
                st = tmp.finish(self.store.durable)
                self.store.install(tmp, meta, st)
        except OSError as exc:
            raise localfs.wrap_os(exc, "CompleteMultipartUpload", key) from exc
        shutil.rmtree(folder, ignore_errors=True)
        return PutResult(etag=localfs.fingerprint(st, len(parts)), checksums={algorithm: value} if value else {})

    def parts(self, upload: Upload) -> Iterator[Part]:
        """The parts received so far, by number, as their uploads answered them; NoSuchUpload once the upload is gone."""
        folder, _ = self._folder(upload, "ListParts")
        found = []
        for path in sorted(folder.glob("part-*.json")):
            try:
                info = json.loads(path.read_text())
            except FileNotFoundError:  # aborted meanwhile
                continue
            found.append(Part(number=int(path.stem.removeprefix("part-")), etag=info["etag"], checksum=info["checksum"]))
        return iter(found)

    def uploads(self, prefix: str) -> Iterator[PendingUpload]:
        """Uploads begun under ``prefix`` and not yet completed or aborted, by key then start, as S3 lists them."""
        found = []
        try:
            folders = list(os.scandir(self.store.root / localfs.UPLOADS))
        except FileNotFoundError:
            return iter(())
        for folder in folders:
            try:
                state = json.loads((Path(folder.path) / "upload.json").read_text())
            except (FileNotFoundError, NotADirectoryError):
                continue  # being begun or aborted right now
            if state["key"].startswith(prefix):
                upload = Upload(key=state["key"], upload_id=folder.name, checksum_algorithm=state["algorithm"])
                found.append(PendingUpload(upload, datetime.fromisoformat(state["initiated"])))
        return iter(sorted(found, key=lambda p: (p.upload.key.encode("utf-8"), p.initiated)))

    def abort(self, upload: Upload) -> None:
        """Drop the parts; an upload already gone is what was wanted."""
        if upload.upload_id.isalnum():
            shutil.rmtree(self.store.root / localfs.UPLOADS / upload.upload_id, ignore_errors=True)
