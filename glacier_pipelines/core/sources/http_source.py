"""http(s):// sources: a streamed GET without proxies or .netrc, every redirect hop checked again like the first URL,
the body's length taken from Content-Length only when the server sent it unencoded."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import requests

from glacier_pipelines.core.sources.errors import SourceError, SourceNotFound, SourceRefused, SourceUnavailable, show
from glacier_pipelines.core.sources.policy import SourcePolicy
from glacier_pipelines.core.sources.stream import SourceStream
from glacier_pipelines.core.sources.validation import validate

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def open_http(url: str, policy: SourcePolicy) -> SourceStream:
    session = requests.Session()
    session.trust_env = False  # env proxies would bypass the address check; .netrc would leak creds
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}  # hash the bytes as stored
    current = url
    try:
        for _ in range(policy.max_redirects + 1):
            resp = session.get(
                current, stream=True, allow_redirects=False, headers=headers, timeout=(policy.connect_timeout, policy.read_timeout)
            )
            if resp.status_code in _REDIRECTS:
                location = resp.headers.get("Location")
                resp.close()
                if not location:
                    raise SourceRefused(url, f"HTTP {resp.status_code} redirect without a Location header")
                current = _redirect_target(url, current, location, policy)
                continue
            if resp.status_code != 200:
                resp.close()
                raise _status_error(url, resp)

            def close_both() -> None:
                resp.close()
                session.close()

            return SourceStream(url, _content_length(resp), resp.iter_content, close_both)
        raise SourceRefused(url, f"too many redirects (more than {policy.max_redirects})")
    except BaseException:
        session.close()
        raise


def _redirect_target(url: str, current: str, location: str, policy: SourcePolicy) -> str:
    """Re-validate every redirect hop: it must stay http(s) and pass the address check again."""
    try:
        target = urljoin(current, location)
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise SourceRefused(target, "redirects may only lead to http:// or https://")
        validate(target, policy)
        return target
    except SourceError as exc:
        raise type(exc)(url, f"redirected to {exc.url}: {exc.reason}", retryable=exc.retryable) from None
    except ValueError:
        raise SourceRefused(url, show(f"redirect to a malformed URL {location!r}")) from None


def _content_length(resp: requests.Response) -> int | None:
    if resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return None  # the server ignored Accept-Encoding; Content-Length counts encoded bytes
    value = resp.headers.get("Content-Length", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _status_error(url: str, resp: requests.Response) -> SourceError:
    code = resp.status_code
    reason = f"HTTP {code} {show(resp.reason or '', 80)}".strip()
    if code in (404, 410):
        return SourceNotFound(url, reason)
    if code in (408, 429) or code >= 500:
        retry_after = resp.headers.get("Retry-After")
        return SourceUnavailable(url, reason + (f" (Retry-After: {show(retry_after, 40)})" if retry_after else ""))
    if 400 <= code < 500:
        return SourceRefused(url, reason)
    return SourceRefused(url, f"unexpected {reason}")
