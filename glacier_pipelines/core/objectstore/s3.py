"""``S3Store``: the port over one bucket of a boto3 S3 client (AWS, moto, SeaweedFS...).

A thin adapter: every call is one boto3 call (a copy is one CopyObject: s3transfer's managed copy
would HEAD the source and the copy around it, three requests where one does; past 5 GiB, the
caller copies in parts with ``upload_part_copy``), every ClientError or BotoCoreError becomes a StoreError
classified by core/faults.py. What the server behind the client can do is declared by the
caller in ``capabilities`` (``AWS`` by default).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.core.objectstore import base
from glacier_pipelines.core.objectstore.base import (
    AWS,
    Body,
    Capabilities,
    ObjectBody,
    ObjectEntry,
    ObjectHead,
    Part,
    PendingUpload,
    PutResult,
    RestoreOutcome,
    Upload,
)
from glacier_pipelines.core.objectstore.errors import StoreError, refusal

DELETE_BATCH = 1000  # DeleteObjects' limit


@contextmanager
def answers(operation: str, key: str | None = None) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StoreError.wrap(exc, operation, key) from exc


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    unknown = set(headers or {}) - set(base.CONTENT_HEADERS)
    if unknown:
        raise ValueError(f"headers {sorted(unknown)} are not among {', '.join(base.CONTENT_HEADERS)}")
    return {h: v for h, v in (headers or {}).items() if v}


def _object_args(
    storage_class: str | None,
    metadata: Mapping[str, str] | None,
    sse: str | None,
    kms_key_id: str | None,
    bucket_key: bool | None = None,
) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if storage_class is not None:
        args["StorageClass"] = storage_class
    if metadata is not None:
        args["Metadata"] = dict(metadata)
    if sse:
        args["ServerSideEncryption"] = sse
        if sse.startswith("aws:kms"):
            if kms_key_id:
                args["SSEKMSKeyId"] = kms_key_id
            if bucket_key is not None:
                args["BucketKeyEnabled"] = bool(bucket_key)
    return args


def _checksums(resp: Mapping[str, Any]) -> dict[str, str]:
    return {alg: resp[f"Checksum{alg}"] for alg in base.CHECKSUM_ALGORITHMS if resp.get(f"Checksum{alg}")}


def _etag(resp: Mapping[str, Any]) -> str:
    return str(resp.get("ETag") or "").strip('"')


class S3Store:
    """One bucket. ``client`` is a boto3 S3 client; its retry mode (standard or adaptive) retries under these calls."""

    def __init__(self, client: Any, bucket: str, *, capabilities: Capabilities = AWS):
        self.client, self.bucket, self.capabilities = client, bucket, capabilities

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket})"

    def head(self, key: str, *, checksum: bool = False) -> ObjectHead:
        with answers("HeadObject", key):
            resp = self.client.head_object(Bucket=self.bucket, Key=key, **({"ChecksumMode": "ENABLED"} if checksum else {}))
        return ObjectHead(
            key=key,
            size=int(resp["ContentLength"]),
            etag=_etag(resp),
            storage_class=resp.get("StorageClass") or "STANDARD",
            last_modified=resp["LastModified"],
            metadata=dict(resp.get("Metadata") or {}),
            checksums=_checksums(resp),
            restore=base.parse_restore(resp.get("Restore")),
            sse=resp.get("ServerSideEncryption"),
            kms_key_id=resp.get("SSEKMSKeyId"),
            bucket_key=resp.get("BucketKeyEnabled"),
            sse_customer=resp.get("SSECustomerAlgorithm"),
            checksum_type=resp.get("ChecksumType"),
            headers={h: resp[h] for h in base.CONTENT_HEADERS if resp.get(h)},
        )

    def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None, if_match: str | None = None) -> ObjectBody:
        base.check_range(byte_range)
        args: dict[str, Any] = {"IfMatch": _quoted(if_match)} if if_match else {}
        if byte_range is not None:
            start, end = byte_range
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        with answers("GetObject", key):
            resp = self.client.get_object(Bucket=self.bucket, Key=key, **args)
        size = int(resp["ContentLength"])
        content_range, total = None, size
        if resp.get("ContentRange"):  # "bytes 0-9/100"
            span, _, whole = resp["ContentRange"].removeprefix("bytes ").partition("/")
            first, _, last = span.partition("-")
            content_range, total = (int(first), int(last)), int(whole)
        return ObjectBody(
            key=key,
            body=resp["Body"],
            size=size,
            total_size=total,
            etag=_etag(resp),
            storage_class=resp.get("StorageClass") or "STANDARD",
            metadata=dict(resp.get("Metadata") or {}),
            content_range=content_range,
        )

    def tags(self, key: str) -> dict[str, str]:
        """The object's tags (GetObjectTagging)."""
        with answers("GetObjectTagging", key):
            resp = self.client.get_object_tagging(Bucket=self.bucket, Key=key)
        return {t["Key"]: t["Value"] for t in resp.get("TagSet", [])}

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
        args = _object_args(storage_class, metadata, sse, kms_key_id)
        if content_type:
            args["ContentType"] = content_type
        if tags:
            args["Tagging"] = urlencode(list(tags.items()))
        if algorithm:
            args["ChecksumAlgorithm"] = algorithm
            if checksum is not None:
                args[f"Checksum{algorithm}"] = checksum  # sent as given: the server recomputes it and refuses a mismatch
        if isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        with answers("PutObject", key):
            resp = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **args)
        return PutResult(etag=_etag(resp), checksums=_checksums(resp))

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
    ) -> Upload:
        algorithm = base.check_object_args(storage_class, sse, checksum_algorithm)
        args = {**_headers(headers), **_object_args(storage_class, metadata, sse, kms_key_id, bucket_key)}
        if tags:
            args["Tagging"] = urlencode(list(tags.items()))
        if algorithm:
            args["ChecksumAlgorithm"] = algorithm
        with answers("CreateMultipartUpload", key):
            resp = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **args)
        return Upload(key=key, upload_id=resp["UploadId"], checksum_algorithm=algorithm)

    def upload_part(self, upload: Upload, number: int, data: bytes | bytearray | memoryview, *, checksum: str | None = None) -> Part:
        base.check_part_number(number)
        args: dict[str, Any] = {}
        algorithm = upload.checksum_algorithm
        if algorithm:
            args["ChecksumAlgorithm"] = algorithm
            if checksum is not None:
                args[f"Checksum{algorithm}"] = checksum
        elif checksum is not None:
            raise ValueError("a part checksum was given but the upload was begun without a checksum algorithm")
        with answers("UploadPart", upload.key):
            resp = self.client.upload_part(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, PartNumber=number, Body=data, **args
            )
        return Part(number=number, etag=_etag(resp), checksum=resp.get(f"Checksum{algorithm}") if algorithm else None)

    def upload_part_copy(
        self,
        upload: Upload,
        number: int,
        source: str,
        byte_range: tuple[int, int],
        *,
        source_store: base.ObjectStore | None = None,
        if_match: str | None = None,
    ) -> Part:
        """UploadPartCopy: S3 copies the byte range (inclusive) of the source into part ``number``."""
        base.check_part_number(number)
        base.check_range(byte_range)
        src = base.check_source_store(self, source_store, S3Store)
        args: dict[str, Any] = {"CopySourceIfMatch": _quoted(if_match)} if if_match else {}
        with answers("UploadPartCopy", upload.key):
            resp = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=upload.key,
                UploadId=upload.upload_id,
                PartNumber=number,
                CopySource={"Bucket": src.bucket, "Key": source},
                CopySourceRange=f"bytes={byte_range[0]}-{byte_range[1]}",
                **args,
            )
        result = resp.get("CopyPartResult", {})
        algorithm = upload.checksum_algorithm
        return Part(number=number, etag=_etag(result), checksum=result.get(f"Checksum{algorithm}") if algorithm else None)

    def complete(self, upload: Upload, parts: Sequence[Part]) -> PutResult:
        listed = []
        for part in parts:
            entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
            if upload.checksum_algorithm and part.checksum:
                entry[f"Checksum{upload.checksum_algorithm}"] = part.checksum
            listed.append(entry)
        with answers("CompleteMultipartUpload", upload.key):
            resp = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, MultipartUpload={"Parts": listed}
            )
        return PutResult(etag=_etag(resp), checksums=_checksums(resp))

    def abort(self, upload: Upload) -> None:
        """Abort; an upload already gone (completed or aborted) is what was wanted."""
        try:
            with answers("AbortMultipartUpload", upload.key):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)
        except StoreError as exc:
            if exc.code not in ("NoSuchUpload", "404"):
                raise

    def parts(self, upload: Upload) -> Iterator[Part]:
        """The parts S3 holds for an open upload, by number (ListParts, page after page); NotFound once it is gone."""
        algorithm = upload.checksum_algorithm
        with answers("ListParts", upload.key):
            pages = self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)
            for page in pages:
                for item in page.get("Parts", []):
                    checksum = item.get(f"Checksum{algorithm}") if algorithm else None
                    yield Part(number=int(item["PartNumber"]), etag=_etag(item), checksum=checksum)

    def uploads(self, prefix: str = "") -> Iterator[PendingUpload]:
        """Multipart uploads under ``prefix`` not yet completed or aborted (ListMultipartUploads, page after page)."""
        with answers("ListMultipartUploads", prefix):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Uploads", []):
                    yield PendingUpload(Upload(key=item["Key"], upload_id=item["UploadId"], checksum_algorithm=None), item["Initiated"])

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
        """One CopyObject (atomic; tags, and system headers with COPY, come along). S3 copies at most 5 GiB at once:
        a larger source is copied in parts (``begin``, ``upload_part_copy``, ``complete``: core/moves.py does)."""
        algorithm = base.check_object_args(storage_class, sse, checksum_algorithm)
        base.check_copy_args(metadata, metadata_directive)
        src = base.check_source_store(self, source_store, S3Store)
        args = _object_args(storage_class, metadata if metadata_directive == "REPLACE" else None, sse, kms_key_id, bucket_key)
        args["MetadataDirective"] = metadata_directive
        if metadata_directive == "REPLACE":
            args.setdefault("Metadata", {})
        if algorithm:
            args["ChecksumAlgorithm"] = algorithm
        if if_match:
            args["CopySourceIfMatch"] = _quoted(if_match)
        with answers("CopyObject", key):
            resp = self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": src.bucket, "Key": source}, **args)
        result = resp.get("CopyObjectResult", {})
        return PutResult(etag=_etag(result), checksums=_checksums(result))

    def restore(self, key: str, *, days: int, tier: str = "Standard") -> RestoreOutcome:
        """Start a restore (202), or extend a restored copy (200); one already running is not an error."""
        base.check_restore_args(days, tier)
        try:
            with answers("RestoreObject", key):
                resp = self.client.restore_object(
                    Bucket=self.bucket, Key=key, RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}}
                )
        except StoreError as exc:
            if exc.code == "RestoreAlreadyInProgress":
                return "in_progress"
            raise
        return "extended" if resp.get("ResponseMetadata", {}).get("HTTPStatusCode") == 200 else "started"

    def list(self, prefix: str = "", *, start_after: str | None = None, page_size: int = base.LIST_PAGE) -> Iterator[ObjectEntry]:
        """Every key under ``prefix`` in S3's order, fetched ``page_size`` keys per request as the iterator advances."""
        if not 1 <= page_size <= base.LIST_PAGE:
            raise ValueError(f"page size {page_size} is not between 1 and {base.LIST_PAGE}")
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
        if start_after:
            args["StartAfter"] = start_after
        with answers("ListObjectsV2", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("Contents", []):
                    yield ObjectEntry(
                        key=item["Key"],
                        size=int(item["Size"]),
                        etag=_etag(item),
                        last_modified=item["LastModified"],
                        storage_class=item.get("StorageClass") or "STANDARD",
                    )

    def presign(self, key: str, *, expires_in: int = 3600) -> str:
        """A GET URL anyone holding it may use until it expires (signed locally: no request is sent)."""
        base.check_presign_args(expires_in)
        with answers("PresignGetObject", key):
            return str(self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in))

    def delete(self, keys: str | Iterable[str]) -> None:
        """Delete one key (DeleteObject) or many (DeleteObjects, 1,000 per request); a missing key is not an error."""
        if isinstance(keys, str):
            with answers("DeleteObject", keys):
                self.client.delete_object(Bucket=self.bucket, Key=keys)
            return
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: builtins.list[str]) -> None:
        with answers("DeleteObjects", keys[0]):
            resp = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        for error in resp.get("Errors", []):
            if error.get("Code") not in ("NoSuchKey",):
                raise refusal(error.get("Code") or "InternalError", 0, error.get("Message") or "", "DeleteObjects", error.get("Key"))
