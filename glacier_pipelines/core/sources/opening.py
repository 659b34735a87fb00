"""``open_source``: a URL checked against the policy, then opened by the reader of its scheme, and always closed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from glacier_pipelines.core.sources.errors import SourceError, wrap
from glacier_pipelines.core.sources.file_source import open_file
from glacier_pipelines.core.sources.policy import SourcePolicy
from glacier_pipelines.core.sources.s3_source import open_s3
from glacier_pipelines.core.sources.stream import SourceStream
from glacier_pipelines.core.sources.validation import validate


@contextmanager
def open_source(url: str, policy: SourcePolicy) -> Iterator[SourceStream]:
    """Validate and open ``url``; the underlying file/connection is always closed on exit."""
    stream = _open(url, policy)
    try:
        yield stream
    finally:
        stream.close()


def _open(url: str, policy: SourcePolicy) -> SourceStream:
    target = validate(url, policy)
    try:
        if target.scheme == "file":
            return open_file(url, target.path)
        if target.scheme == "s3":
            return open_s3(url, policy, target.bucket, target.key)
        from glacier_pipelines.core.sources.http_source import open_http  # requests only where http(s) is read

        return open_http(url, policy)
    except SourceError:
        raise
    except Exception as exc:
        raise wrap(url, exc) from None
