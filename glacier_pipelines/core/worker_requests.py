"""Worker requests besides storage: deletion, restoration and availability, told apart by content type.

REGARDS tells its worker types apart by the ``regards.request.content_type`` header. This
worker accepts, on its one request queue:

- ``s3-glacier-storage-worker`` (the default): a storage request (``core/requests.py``);
- ``s3-glacier-deletion-worker``: delete one stored file (:class:`DeletionRequest`);
- ``s3-glacier-restoration-worker``: restore files and answer with download links (:class:`RestorationRequest`);
- ``s3-glacier-availability-worker``: say whether files can be downloaded now (:class:`AvailabilityRequest`).

The envelope (tenant, request id, owner, session) is the same headers as a storage request's.
Parsing never raises for bad input: a :class:`ParsedWorkerRequest` with ``errors`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from glacier_pipelines.core.requests import Envelope, ParsedRequest, _printable_or_none, decode_body, validate_body, validate_envelope
from glacier_pipelines.core.restores import TIERS, FileSelector

STORAGE = "s3-glacier-storage-worker"
DELETION = "s3-glacier-deletion-worker"
RESTORATION = "s3-glacier-restoration-worker"
AVAILABILITY = "s3-glacier-availability-worker"
CONTENT_TYPES = (STORAGE, DELETION, RESTORATION, AVAILABILITY)
KINDS = {DELETION: "DELETION", RESTORATION: "RESTORATION", AVAILABILITY: "AVAILABILITY"}
MAX_FILES = 1000


class DeletionRequest(BaseModel):
    """Delete one stored file of the tenant, named by its storage request id, its checksum or its stored URL.

    By ``requestId`` one reference goes (shared content stays while another request refers to
    it); by ``checksum`` or ``url`` every reference of the tenant to that content goes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: FileSelector
    reason: StrictStr | None = Field(default=None, max_length=2000)


class RestorationRequest(BaseModel):
    """Restore files for ``days`` at ``tier`` (defaults: the worker's), answered with download links."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[FileSelector] = Field(min_length=1, max_length=MAX_FILES)
    tier: StrictStr | None = None
    days: StrictInt | None = Field(default=None, ge=1)

    @field_validator("tier")
    @classmethod
    def _tier(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for tier in TIERS:
            if value.lower() == tier.lower():
                return tier
        raise ValueError(f"tier must be one of {', '.join(TIERS)}")


class AvailabilityRequest(BaseModel):
    """Which of these files can be downloaded now (a restored copy, or a class readable at once), and until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[FileSelector] = Field(min_length=1, max_length=MAX_FILES)


MODELS: dict[str, type[BaseModel]] = {DELETION: DeletionRequest, RESTORATION: RestorationRequest, AVAILABILITY: AvailabilityRequest}


@dataclass
class ParsedWorkerRequest:
    """A deletion, restoration or availability request; ``request`` and ``envelope`` are set only when valid."""

    content_type: str
    tenant: str | None
    request_id: str | None
    owner: str | None = None
    session: str | None = None
    body: Any = None
    request: BaseModel | None = None
    envelope: Envelope | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def kind(self) -> str:
        return KINDS[self.content_type]

    def as_invalid_storage_request(self) -> ParsedRequest:
        """The same failure in the shape the catalog records INVALID_CONTENT answers for (``Catalog.record_requests``)."""
        return ParsedRequest(
            tenant=self.tenant,
            request_id=self.request_id,
            owner=self.owner,
            session=self.session,
            body=self.body if isinstance(self.body, dict) else None,
            errors=list(self.errors),
        )


def is_worker_content_type(content_type: Any) -> bool:
    return content_type in MODELS


def parse_worker_request(content_type: str, body: Any, envelope: dict[str, Any]) -> ParsedWorkerRequest:
    """Validate a body (bytes, text or dict) of ``content_type`` and its envelope; never raises for bad input."""
    result = ParsedWorkerRequest(
        content_type=content_type,
        tenant=_printable_or_none(envelope.get("tenant")),
        request_id=_printable_or_none(envelope.get("requestId")),
        owner=_printable_or_none(envelope.get("owner")),
        session=_printable_or_none(envelope.get("session")),
    )
    if content_type not in MODELS:
        result.errors.append(f"content type {content_type!r} is not one of {', '.join(MODELS)}")
        return result
    result.envelope = validate_envelope(envelope, result.errors)
    body = decode_body(body, result.errors)
    if body is None:
        return _invalid(result)
    result.body = body
    result.request = validate_body(MODELS[content_type], body, result.errors)
    return _invalid(result) if result.errors else result


def _invalid(result: ParsedWorkerRequest) -> ParsedWorkerRequest:
    if result.errors:
        result.request = None
        result.envelope = None
    return result


def not_found(tenant: str, selector: FileSelector) -> str:
    """The one refusal for a file that is unknown, deleted long ago, or another tenant's: it never says which."""
    return f"{selector.describe()}: no archived file of tenant {tenant} has that name"
