"""Open archival sources (file://, http(s)://, s3://) for one streaming pass, safely.

Source URLs come from requests, so they are untrusted: file:// is confined to configured roots and
http(s) may not reach private or metadata addresses (SSRF). Failures become categorised ``SourceError``s
whose ``retryable`` flag tells the caller whether trying again can help. Bodies are streamed and
byte-counted so a truncated download is never archived as complete.

One module per concern: policy.py (what may be read), validation.py (whether a URL may be read),
file_source.py, http_source.py and s3_source.py (reading each scheme), stream.py (the one-pass,
byte-counted stream), opening.py (``open_source``), errors.py (the error family and redaction).
"""

from glacier_pipelines.core.sources.errors import (
    MAX_URL_LENGTH,
    SourceError,
    SourceNotFound,
    SourceRefused,
    SourceUnavailable,
    redact_url,
)
from glacier_pipelines.core.sources.opening import open_source
from glacier_pipelines.core.sources.policy import ALLOWED_NETWORKS_ENV, IPAddress, IPNetwork, SourcePolicy
from glacier_pipelines.core.sources.stream import SourceStream
from glacier_pipelines.core.sources.validation import check_source_url

__all__ = [
    "ALLOWED_NETWORKS_ENV",
    "MAX_URL_LENGTH",
    "IPAddress",
    "IPNetwork",
    "SourceError",
    "SourceNotFound",
    "SourcePolicy",
    "SourceRefused",
    "SourceStream",
    "SourceUnavailable",
    "check_source_url",
    "open_source",
    "redact_url",
]
