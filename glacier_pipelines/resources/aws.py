"""Every AWS client comes from a dagster-aws resource, with the botocore settings uploads need on top.

``S3ClientResource`` is ``dagster_aws.s3.S3Resource`` (region_name, endpoint_url, profile_name,
max_attempts, use_ssl, verify, keys: the fields Dagster users already set, usually with
``dg.EnvVar``) plus what that resource does not expose: botocore's retry mode, connect and read
timeouts, a connection pool as large as the part concurrency, and payload signing.
``AwsClientResource`` is the same over ``dagster_aws.utils.ResourceWithBoto3Configuration`` (the
base of dagster-aws' SSM and Secrets Manager resources) for the services dagster-aws has no
resource for: SQS (restore events) and the Glacier vault API.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import boto3
import dagster as dg
from botocore.config import Config
from botocore.handlers import disable_signing
from dagster_aws.s3 import S3Resource
from dagster_aws.utils import ResourceWithBoto3Configuration, construct_boto_client_retry_config
from pydantic import Field

_sessions: dict[str | None, boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def resolved(value: Any) -> Any:
    """A field's value: outside a run (CLI, tests) an ``EnvVar`` field is not resolved yet."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def is_loopback(url: str | None) -> bool:
    host = urlsplit(url).hostname if url else None
    return host in ("127.0.0.1", "localhost", "::1")


def shared_session(profile_name: str | None = None) -> boto3.session.Session:
    """One process-wide boto3 session per profile, so service models are parsed once.

    A new session costs 0.1-0.4 s per client; paths that build many clients (the vault copy:
    the sensor and each of its three assets build two) share this one. Sessions are not
    thread-safe (clients are), so creation is serialized; every call still returns a new
    client, so event handlers registered on one never reach another.
    """
    with _sessions_lock:
        if profile_name not in _sessions:
            _sessions[profile_name] = boto3.session.Session(profile_name=profile_name)
        return _sessions[profile_name]


class _Tuned:
    """Client construction shared by both resources (fields declared on each, below)."""

    def pool_floor(self) -> int:
        """Connections the pool needs at least, besides ``max_pool_connections`` (e.g. 2 x part concurrency)."""
        return 0

    def botocore_config(self, *, sign_payload: bool | None | str = "field", **overrides: Any) -> Config:
        """dagster-aws' retry configuration, merged with the retry mode, timeouts, pool and signing of this resource."""
        sign = self.sign_payload if sign_payload == "field" else sign_payload  # type: ignore[attr-defined]
        options: dict[str, Any] = {
            "retries": {"mode": self.retry_mode, "max_attempts": self.max_attempts},  # type: ignore[attr-defined]
            "connect_timeout": self.connect_timeout,  # type: ignore[attr-defined]
            "read_timeout": self.read_timeout,  # type: ignore[attr-defined]
            "max_pool_connections": max(self.max_pool_connections, self.pool_floor()),  # type: ignore[attr-defined]
            **({"s3": {"payload_signing_enabled": sign}} if sign is not None else {}),
        }
        options.update(overrides)
        return construct_boto_client_retry_config(self.max_attempts).merge(Config(**options))  # type: ignore[attr-defined]

    def build_client(
        self, service: str, *, session: boto3.session.Session | None = None, sign_payload: bool | None | str = "field", **config: Any
    ) -> Any:
        profile = resolved(self.profile_name) or None  # type: ignore[attr-defined]
        session = session or boto3.session.Session(profile_name=profile)
        client = session.client(
            service,
            region_name=resolved(self.region_name) or None,  # type: ignore[attr-defined]
            endpoint_url=resolved(self.endpoint_url) or None,  # type: ignore[attr-defined]
            use_ssl=self.use_ssl,  # type: ignore[attr-defined]
            verify=self.verify,  # type: ignore[attr-defined]
            aws_access_key_id=resolved(self.aws_access_key_id) or None,  # type: ignore[attr-defined]
            aws_secret_access_key=resolved(self.aws_secret_access_key) or None,  # type: ignore[attr-defined]
            aws_session_token=resolved(self.aws_session_token) or None,  # type: ignore[attr-defined]
            config=self.botocore_config(sign_payload=sign_payload, **config),
        )
        if getattr(self, "use_unsigned_session", False):
            client.meta.events.register(f"choose-signer.{service}.*", disable_signing)
        return client


class S3ClientResource(_Tuned, S3Resource):
    """dagster-aws' ``S3Resource`` with botocore's retry mode, timeouts, pool size and payload signing configurable."""

    max_attempts: int = Field(default=8, description="Attempts per call under botocore's retry mode, the first included.")
    retry_mode: str = Field(default="standard", description="botocore retry mode: standard or adaptive (legacy is not used).")
    connect_timeout: float = Field(default=10, description="Seconds to open a connection.")
    read_timeout: float = Field(default=120, description="Seconds a response may stay silent.")
    max_pool_connections: int = Field(default=10, description="Connections kept per client (raised to what the concurrency needs).")
    sign_payload: bool | None = Field(default=None, description="Whether SigV4 hashes the body too; None: botocore's default.")

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def get_client(self, *, session: boto3.session.Session | None = None, sign_payload: bool | None | str = "field", **config: Any) -> Any:
        return self.build_client("s3", session=session, sign_payload=sign_payload, **config)


class AwsClientResource(_Tuned, ResourceWithBoto3Configuration):
    """dagster-aws' boto3 configuration for services without a dagster-aws resource (SQS, Glacier vaults)."""

    max_attempts: int = Field(default=5, description="Attempts per call under botocore's retry mode, the first included.")
    retry_mode: str = Field(default="standard", description="botocore retry mode: standard or adaptive.")
    connect_timeout: float = Field(default=10, description="Seconds to open a connection.")
    read_timeout: float = Field(default=60, description="Seconds a response may stay silent.")
    max_pool_connections: int = Field(default=10, description="Connections kept per client.")
    sign_payload: bool | None = None  # S3 only; kept for the shared construction

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False
