"""What can go wrong reading a source: the ``SourceError`` family, log-safe text and URLs, and the translation of any
library's error (requests, urllib3, botocore, the OS) into that family, scrubbing the secrets it may echo."""

from __future__ import annotations

import errno
import re
import sys
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

MAX_URL_LENGTH = 4096


class SourceError(Exception):
    """A source could not be read; ``url`` is redacted, ``retryable`` says if a retry may help."""

    retryable: bool = False

    def __init__(self, url: str, reason: str, *, retryable: bool | None = None) -> None:
        self.url = redact_url(url)
        self.reason = reason
        if retryable is not None:
            self.retryable = retryable
        super().__init__(f"{self.url}: {reason}")

    def __reduce__(self) -> Any:  # keep pickling working despite the custom __init__
        return (type(self), (self.url, self.reason), {"retryable": self.retryable})


class SourceRefused(SourceError):
    """The policy forbids this source; retrying will not help."""


class SourceNotFound(SourceError):
    """The source does not exist."""


class SourceUnavailable(SourceError):
    """A transient failure (timeout, reset, 5xx, truncation, archived object); retry later."""

    retryable = True


def show(text: str, limit: int = 300) -> str:
    """Make text log-safe: escape control characters and lone surrogates, bound the length."""
    text = text[:limit] + ("..." if len(text) > limit else "")
    text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def redact_url(url: str) -> str:
    """Strip userinfo everywhere, and query/fragment of http(s) URLs (pre-signed signatures)."""
    try:
        text = show(str(url), MAX_URL_LENGTH)
        parts = urlsplit(text)
        if "@" in parts.netloc:  # edit the text rather than urlunsplit, which would reshape odd URLs
            text = text.replace("//" + parts.netloc, "//" + parts.netloc.rpartition("@")[2], 1)
        if parts.scheme.lower() in ("http", "https"):
            text = re.split(r"[?#]", text, maxsplit=1)[0]
        return text
    except Exception:
        return "<unparseable URL>"


def wrap(url: str, exc: BaseException) -> SourceError:
    """Translate any library error into the SourceError family, scrubbing secrets it may echo."""
    try:
        detail = str(exc) or type(exc).__name__
        parts = urlsplit(url)
        for secret in (parts.password, parts.username, parts.query):
            detail = detail.replace(secret, "[redacted]") if secret else detail
        detail = show(re.sub(r"\?[^\s)'\"]*", "?[redacted]", detail))
    except Exception:
        detail = type(exc).__name__
    # The HTTP and S3 libraries are looked up, not imported: an error of theirs can only exist once they are loaded,
    # and the fetch processes (core/local_fetch.py), which read file:// alone, start without them.
    requests, urllib3, botocore = (sys.modules.get(f"{name}.exceptions") for name in ("requests", "urllib3", "botocore"))
    timeouts = (TimeoutError, urllib3.TimeoutError) if urllib3 else (TimeoutError,)
    if (requests and isinstance(exc, requests.Timeout)) or any(isinstance(e, timeouts) for e in (exc, *getattr(exc, "args", ()))):
        return SourceUnavailable(url, f"timed out: {detail}")
    if requests and isinstance(exc, requests.RequestException) and isinstance(exc, ValueError):
        return SourceRefused(url, f"invalid request: {detail}")  # InvalidURL, InvalidHeader, ...
    if (requests and isinstance(exc, requests.RequestException)) or (urllib3 and isinstance(exc, urllib3.HTTPError)):
        return SourceUnavailable(url, f"connection failed: {detail}")
    if botocore and isinstance(exc, botocore.ClientError):
        return s3_error(url, exc)
    if botocore and isinstance(exc, (botocore.NoCredentialsError, botocore.ParamValidationError)):
        return SourceRefused(url, f"S3 request refused: {detail}")
    if botocore and isinstance(exc, botocore.BotoCoreError):
        return SourceUnavailable(url, f"S3 connection failed: {detail}")
    if isinstance(exc, OSError):
        return os_error(url, exc)
    return SourceUnavailable(url, f"unexpected {type(exc).__name__}: {detail}")


def os_error(url: str, exc: OSError) -> SourceError:
    detail = show(exc.strerror or str(exc) or type(exc).__name__)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return SourceNotFound(url, f"no such file: {detail}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.ELOOP):
        return SourceRefused(url, f"cannot open: {detail}")
    return SourceUnavailable(url, f"I/O error: {detail}")


def s3_error(url: str, exc: ClientError) -> SourceError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = show(f"S3 {code or status}: {error.get('Message') or code}")
    if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404") or status == 404:
        return SourceNotFound(url, detail)
    if code == "InvalidObjectState":
        where = f" in {error['StorageClass']}" if error.get("StorageClass") else ""
        return SourceUnavailable(url, f"object is archived{where} and must be restored (S3 RestoreObject) before it can be read ({detail})")
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        return SourceRefused(url, detail)
    return SourceUnavailable(url, detail)
