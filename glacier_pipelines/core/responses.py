"""Worker responses in the REGARDS ``StorageWorkerResponseDto`` shape."""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit


def source_filename(url: str) -> str:
    """The last path segment of a source URL, as REGARDS reports ``filename``."""
    path = unquote(urlsplit(url).path)
    return posixpath.basename(path.rstrip("/")) or "file"


def success_content(
    *,
    bucket: str,
    key: str,
    checksum: str,
    algorithm: str,
    size: int,
    width: int | None,
    height: int | None,
    source_url: str,
    small_file_managed: bool = False,
    cache_path: str | None = None,
) -> dict[str, Any]:
    parent = posixpath.dirname(key)
    store_file: dict[str, Any] = {
        "checksum": checksum,
        "algorithm": algorithm,
        "storedFileUrl": f"s3://{bucket}/{key}",
        "fileSizeInBytes": size,
    }
    if width is not None and height is not None:  # image fields only for images
        store_file["heightInPx"] = height
        store_file["widthInPx"] = width
    return {
        "fileProcessingMetadata": {
            "smallFileManaged": small_file_managed,
            "cachePath": cache_path,
            "filename": source_filename(source_url),
            "storeParentUrl": f"s3://{bucket}/{parent}",
            "storeParentPath": parent,
        },
        "storeFileMetadata": store_file,
    }


def response_body(request_id: str, status: str, messages: list[str], content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"requestId": request_id, "status": status, "messages": list(messages), "content": content or {}}
