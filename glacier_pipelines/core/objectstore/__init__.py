"""The storage port: one ``ObjectStore`` interface, ``S3Store`` over a boto3 client, ``LocalStore`` over a folder.

Callers write against ``ObjectStore`` and catch ``StoreError``; which implementation they get
is configuration (a bucket, or a folder), never a branch in their logic.
glacier_pipelines_tests/core/test_objectstore_conformance.py runs one suite against each.
"""

from glacier_pipelines.core.objectstore.base import (
    AWS,
    MOTO,
    SEAWEEDFS,
    Capabilities,
    ObjectBody,
    ObjectEntry,
    ObjectHead,
    ObjectStore,
    Part,
    PutResult,
    RestoreOutcome,
    RestoreStatus,
    Upload,
)
from glacier_pipelines.core.objectstore.errors import (
    ChecksumRejected,
    NotFound,
    NotRestored,
    StoreError,
)
from glacier_pipelines.core.objectstore.local import LOCAL, LocalStore
from glacier_pipelines.core.objectstore.s3 import S3Store

__all__ = [
    "AWS",
    "LOCAL",
    "MOTO",
    "SEAWEEDFS",
    "Capabilities",
    "ChecksumRejected",
    "LocalStore",
    "NotFound",
    "NotRestored",
    "ObjectBody",
    "ObjectEntry",
    "ObjectHead",
    "ObjectStore",
    "Part",
    "PutResult",
    "RestoreOutcome",
    "RestoreStatus",
    "S3Store",
    "StoreError",
    "Upload",
]
