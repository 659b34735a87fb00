"""The catalog: the source of truth for every request, batch, stored object and response."""

from glacier_pipelines.catalog.store import Catalog, RequestRow, StoredObject

__all__ = ["Catalog", "RequestRow", "StoredObject"]
