"""Storage requests: the REGARDS ``StorageWorkerRequestDto`` body plus its envelope, validated strictly.

Parsing never raises for bad input: it returns a ``ParsedRequest`` whose ``errors`` say which
field is wrong and why, so one malformed request becomes ``INVALID_CONTENT`` and the rest of
its batch goes on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, field_validator, model_validator

from glacier_pipelines.core import checksums, keys

ENVELOPE_FIELDS = ("tenant", "requestId", "owner", "session")
MAX_URL_LENGTH = 4096
MAX_REQUEST_ID_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageRequest(BaseModel):
    """The body of a storage request (REGARDS ``StorageWorkerRequestDto``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checksum: StrictStr
    algorithm: StrictStr
    url: StrictStr = Field(min_length=1, max_length=MAX_URL_LENGTH)
    destinationDirectory: StrictStr = ""
    computeImageSize: StrictBool = False
    activateSmallFilePackaging: StrictBool = False
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        return checksums.normalize_algorithm(value)

    @field_validator("url")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("contains control characters")
        if not _SCHEME.match(value):
            raise ValueError("must be an absolute URL such as file:///data/x, https://host/x or s3://bucket/key")
        return value

    @field_validator("destinationDirectory")
    @classmethod
    def _safe_directory(cls, value: str) -> str:
        try:
            return keys.sanitize_directory(value)
        except keys.InvalidKey as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _checksum_matches_algorithm(self) -> "StorageRequest":
        expected = checksums.hex_length(self.algorithm)
        value = self.checksum.strip().lower()
        if not re.fullmatch(r"[0-9a-f]*", value):
            raise ValueError(f"checksum: must be hexadecimal, got {self.checksum[:80]!r}")
        if len(value) != expected:
            raise ValueError(f"checksum: a {self.algorithm} checksum has {expected} hex characters, got {len(value)}")
        object.__setattr__(self, "checksum", value)
        return self


class Envelope(BaseModel):
    """Who asked: carried as AMQP headers ``regards.tenant``, ``regards.request.id``... or JSONL top-level fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: StrictStr
    requestId: StrictStr = Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH)
    owner: StrictStr | None = None
    session: StrictStr | None = None

    @field_validator("tenant")
    @classmethod
    def _valid_tenant(cls, value: str) -> str:
        return keys.tenant_field(value)

    @field_validator("requestId")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if _CONTROL.search(value) or not value.strip():
            raise ValueError("must be non-empty printable text")
        return value


@dataclass
class ParsedRequest:
    """Outcome of parsing: ``request`` and ``envelope`` are set only when ``errors`` is empty.

    ``tenant`` and ``request_id`` hold whatever could be read, even from an invalid message,
    so its ``INVALID_CONTENT`` result can be addressed.
    """

    tenant: str | None
    request_id: str | None
    owner: str | None = None
    session: str | None = None
    body: dict[str, Any] | None = None
    request: StorageRequest | None = None
    envelope: Envelope | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def _format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "is required"
        name = f"{prefix}{loc}" if loc else ""
        out.append(f"{name}: {msg}" if name and not msg.startswith(f"{loc}:") else msg)
    return out


def _printable_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() and not _CONTROL.search(value) else None


def validate_envelope(envelope: dict[str, Any], errors: list[str]) -> Envelope | None:
    """The envelope's values as an Envelope, or None with the reasons appended to ``errors``."""
    try:
        return Envelope(**{k: v for k, v in envelope.items() if v is not None})
    except ValidationError as exc:
        errors.extend(_format_errors(exc))
    except TypeError as exc:  # non-string keys
        errors.append(f"envelope: {exc}")
    return None


def decode_body(body: Any, errors: list[str]) -> dict[str, Any] | None:
    """A message body (dict, JSON text or bytes) as a JSON object, or None with the reason appended to ``errors``.

    Shared by every request type so that one malformed body reads the same whatever the queue.
    """
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            errors.append("body: is not UTF-8 text")
            return None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            errors.append(f"body: is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
            return None
        except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
            errors.append(f"body: is not acceptable JSON ({type(exc).__name__}: {str(exc)[:120]})")
            return None
    if not isinstance(body, dict):
        errors.append(f"body: must be a JSON object, got {'null' if body is None else type(body).__name__}")
        return None
    return body


def validate_body(model: Any, body: dict[str, Any], errors: list[str]) -> Any:
    """``model`` validated from a decoded body, or None with the reasons appended to ``errors`` (every request type)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors.extend(_format_errors(exc))
    except RecursionError:
        errors.append("body: nested too deeply")
    return None


def parse_request(body: Any, envelope: dict[str, Any]) -> ParsedRequest:
    """Validate a request body (dict, JSON text or bytes) and its envelope values."""
    result = ParsedRequest(
        tenant=_printable_or_none(envelope.get("tenant")),
        request_id=_printable_or_none(envelope.get("requestId")),
        owner=_printable_or_none(envelope.get("owner")),
        session=_printable_or_none(envelope.get("session")),
    )
    result.envelope = validate_envelope(envelope, result.errors)
    body = decode_body(body, result.errors)
    if body is None:
        return _invalid(result)
    result.body = body
    result.request = validate_body(StorageRequest, body, result.errors)
    return _invalid(result) if result.errors else result


def _invalid(result: ParsedRequest) -> ParsedRequest:
    result.request = None
    result.envelope = None
    return result


def parse_submission(obj: Any) -> ParsedRequest:
    """A line of ``glacier-pipelines submit``: request fields plus the envelope at the top level."""
    if not isinstance(obj, dict):
        return ParsedRequest(None, None, errors=[f"must be a JSON object, got {type(obj).__name__}"])
    envelope = {k: obj.get(k) for k in ENVELOPE_FIELDS}
    body = {k: v for k, v in obj.items() if k not in ENVELOPE_FIELDS}
    return parse_request(body, envelope)
