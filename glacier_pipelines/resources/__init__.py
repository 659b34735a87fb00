"""Dagster resources: thin, env-configured wrappers that hand plain objects to the flows."""

from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, RequestTransportResource, SourcesResource, resources_from_env

__all__ = ["ArchiveStoreResource", "CatalogResource", "RequestTransportResource", "SourcesResource", "resources_from_env"]
