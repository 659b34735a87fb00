"""Whether a source URL may be read, decided before any byte is: the URL itself (length, control characters, scheme),
then per scheme the file roots, the S3 client and bucket, or the addresses an http(s) host resolves to (no private
or metadata address unless its network is allowed: SSRF)."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import NamedTuple
from urllib.parse import urlsplit

from glacier_pipelines.core.sources.errors import MAX_URL_LENGTH, SourceError, SourceNotFound, SourceRefused, SourceUnavailable, show, wrap
from glacier_pipelines.core.sources.file_source import resolve_file
from glacier_pipelines.core.sources.policy import ALLOWED_NETWORKS_ENV, IPAddress, SourcePolicy
from glacier_pipelines.core.sources.s3_source import split_s3

_SCHEMES = ("file", "http", "https", "s3")
# Unicode's control characters (category Cc) are exactly these 65: one regex search instead of a category lookup per character.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class Target(NamedTuple):
    """What a checked URL names: the real path of a file, or the bucket and key of an S3 object."""

    scheme: str
    path: str = ""
    bucket: str = ""
    key: str = ""


def check_source_url(url: str, policy: SourcePolicy) -> None:
    """Validate ``url`` against ``policy`` (DNS and filesystem lookups only, no download)."""
    validate(url, policy)


def validate(url: str, policy: SourcePolicy) -> Target:
    """What ``url`` names once every check of ``policy`` passed; a ``SourceError`` says why not."""
    try:
        if not isinstance(url, str) or not url.strip():
            raise SourceRefused(str(url), "empty URL")
        if len(url) > MAX_URL_LENGTH:
            raise SourceRefused(url, f"URL is longer than {MAX_URL_LENGTH} characters")
        if _CONTROL.search(url):
            raise SourceRefused(url, "URL contains control characters")
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            raise SourceRefused(url, show(f"malformed URL: {exc}")) from None
        if scheme not in _SCHEMES:
            what = f"unsupported scheme {scheme!r}" if scheme else "not an absolute URL"
            raise SourceRefused(url, f"{what}; only file://, http://, https:// and s3:// are allowed")
        if scheme == "file":
            return Target(scheme, path=resolve_file(url, policy))
        if scheme == "s3":
            bucket, key = split_s3(url, policy)
            return Target(scheme, bucket=bucket, key=key)
        _check_host(url, policy)
        return Target(scheme)
    except SourceError:
        raise
    except Exception as exc:
        raise wrap(url, exc) from exc


def _check_host(url: str, policy: SourcePolicy) -> None:
    """Refuse http(s) hosts that resolve to any non-public address (SSRF, cloud metadata)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise SourceRefused(url, "URL has no host")
    if not host.isascii():  # getaddrinfo (IDNA 2003) and requests (IDNA 2008) could resolve different names
        raise SourceRefused(url, show(f"non-ASCII host {host!r}; use its punycode (xn--) form"))
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise SourceRefused(url, "URL has an invalid port") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise SourceNotFound(url, show(f"host {host!r} does not resolve")) from None
        raise SourceUnavailable(url, show(f"DNS lookup of {host!r} failed: {exc}")) from None
    except (OSError, UnicodeError, ValueError) as exc:
        raise SourceRefused(url, show(f"invalid host {host!r}: {exc}")) from None
    if not infos:
        raise SourceNotFound(url, show(f"host {host!r} has no addresses"))
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise SourceRefused(url, show(f"host {host!r} resolves to an unparseable address")) from None
        ip = (addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None) or addr
        problem = _non_public(ip)
        if problem and not any(a in net for a in {addr, ip} for net in policy.allowed_networks):
            raise SourceRefused(
                url,
                show(
                    f"host {host!r} resolves to {ip} ({problem} address), refused to prevent SSRF; to allow "
                    f"it add its network to SourcePolicy.allowed_networks (env {ALLOWED_NETWORKS_ENV}, "
                    f"e.g. '{ip}/{ip.max_prefixlen}')",
                    600,
                ),
            )


def _non_public(ip: IPAddress) -> str | None:
    """Name why ``ip`` is not publicly routable (most specific first), or None if it is."""
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    )
    return next((label for label, flagged in checks if flagged), None)
