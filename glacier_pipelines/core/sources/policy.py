"""``SourcePolicy``: what a pipeline may read (file roots, networks allowed besides the public internet, timeouts, the S3
client), built by hand or from configuration text."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glacier_pipelines.core.sources.file_source import real_path

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_NETWORKS_ENV = "GLACIER_SOURCE_ALLOWED_NETWORKS"


def parse_network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip())
    except ValueError as exc:
        raise ValueError(f"invalid allowed network {text.strip()!r}: {exc}") from None


@dataclass(frozen=True)
class SourcePolicy:
    """What a pipeline may read. The default allows public http(s) only."""

    file_roots: tuple[Path, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_redirects: int = 5
    s3_client: object | None = None
    user_agent: str = "glacier-pipelines"

    def __post_init__(self) -> None:
        # Normalise str roots / CIDR strings so hand-built policies behave like parsed ones.
        roots: Iterable[Any] = self.file_roots
        nets: Iterable[Any] = self.allowed_networks
        object.__setattr__(self, "file_roots", tuple(Path(r) for r in roots))
        object.__setattr__(self, "allowed_networks", tuple(parse_network(n) if isinstance(n, str) else n for n in nets))
        if self.connect_timeout <= 0 or self.read_timeout <= 0 or self.max_redirects < 0:
            raise ValueError("timeouts must be positive and max_redirects non-negative")

    @functools.cached_property
    def real_roots(self) -> tuple[str, ...]:
        """The roots with their symlinks resolved, once per policy (a policy lives for one run)."""
        return tuple(real_path(str(r)) for r in self.file_roots)

    @classmethod
    def from_strings(cls, roots: str = "", networks: str = "", **kw: Any) -> SourcePolicy:
        """Build a policy from config/env text: roots split on os.pathsep or ',', networks on ','."""
        root_list = [r.strip() for r in re.split(f"[,{re.escape(os.pathsep)}]", roots)]
        return cls(
            file_roots=tuple(Path(r).expanduser() for r in root_list if r),
            allowed_networks=tuple(parse_network(n) for n in networks.split(",") if n.strip()),
            **kw,
        )
