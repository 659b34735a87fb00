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
    PendingUpload,
    PutResult,
    RestoreOutcome,
    RestoreStatus,
    Upload,
    put_document,
)
from glacier_pipelines.core.objectstore.buckets import BucketAdmin, BucketStores, bucket_stores
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
    "BucketAdmin",
    "BucketStores",
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
    "PendingUpload",
    "PutResult",
    "RestoreOutcome",
    "RestoreStatus",
    "S3Store",
    "StoreError",
    "Upload",
    "bucket_stores",
    "put_document",
]
