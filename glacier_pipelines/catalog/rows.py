"""The catalog's rows as the pipeline reads them: a request, a stored object; and the answer a stored request keeps."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.core.requests import StorageRequest


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RequestRow:
    pk: int
    tenant: str
    request_id: str
    status: str
    messages: list[str]
    body: dict[str, Any] | None
    batch_id: str | None
    object_id: int | None
    deduplicated: bool
    size: int | None
    width: int | None
    height: int | None
    stage: dict[str, Any] | None
    algorithm: str | None
    checksum: str | None

    @functools.cached_property
    def request(self) -> StorageRequest:
        """The stored body as a request, validated once per row (it is read several times per file)."""
        return StorageRequest.model_validate(self.body)


@dataclass
class StoredObject:
    id: int
    tenant: str
    bucket: str
    key: str
    storage_class: str
    size: int
    sha256: str
    s3_checksum: str
    etag: str | None
    width: int | None
    height: int | None
    run_id: str | None
    batch_id: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def answer_stage(content: dict[str, Any] | None) -> dict[str, Any]:
    """What a STORED (or stored DELAYED) request keeps until its check answers: the SUCCESS response's content."""
    return {"kind": "answer", "content": content}


def _request_row(row: Any) -> RequestRow:
    m = row._mapping
    return RequestRow(
        pk=m["id"],
        tenant=m["tenant"],
        request_id=m["request_id"],
        status=m["status"],
        messages=list(m["messages"] or []),
        body=m["body"],
        batch_id=m["batch_id"],
        object_id=m["object_id"],
        deduplicated=bool(m["deduplicated"]),
        size=m["size"],
        width=m["width"],
        height=m["height"],
        stage=m["stage"],
        algorithm=m["algorithm"],
        checksum=m["checksum"],
    )


def _object(row: Any) -> StoredObject:
    m = row._mapping
    return StoredObject(**{f: m[f] for f in StoredObject.__dataclass_fields__})
