"""Dagster resources: thin, env-configured wrappers that hand plain objects to the flows.

AWS clients come from dagster-aws resources (``resources.aws``): ``ArchiveStoreResource`` is an
``S3Resource``; the SQS and Glacier clients use dagster-aws' boto3 configuration.
"""

from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
)
from glacier_pipelines.resources.aws import AwsClientResource, S3ClientResource
from glacier_pipelines.resources.from_env import resources_from_env

__all__ = [
    "ArchiveStoreResource",
    "AwsClientResource",
    "CatalogResource",
    "RequestTransportResource",
    "S3ClientResource",
    "SourcesResource",
    "resources_from_env",
]
