"""Buckets rather than objects: which store holds a bucket, and the bucket administration only S3 has.

``bucket_stores`` turns what a flow was given (a bucket -> ObjectStore function, or a boto3
client) into the function flows call for every bucket the catalog names: objects of one tenant
may live in several buckets, and moves copy from one bucket into another.

``BucketAdmin`` is deliberately not part of ``ObjectStore``: HeadBucket, CreateBucket and the
lifecycle configuration administer a bucket; they store nothing, and a folder has no
equivalent to declare in ``Capabilities``. It is the one other place the flows' boto3 calls
go through, and it answers as the port does: a ``StoreError`` classified by core/faults.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from glacier_pipelines.core.objectstore.base import ObjectStore
from glacier_pipelines.core.objectstore.errors import StoreError
from glacier_pipelines.core.objectstore.s3 import S3Store, answers

BucketStores = Callable[[str], ObjectStore]


def bucket_stores(source: BucketStores | Any) -> BucketStores:
    """bucket -> its ObjectStore: ``source`` itself when it is such a function, else an S3Store per bucket on the client
    ``source`` (callers that still hold a boto3 client pass it as it is)."""
    if isinstance(source, S3Store):
        client = source.client
        return lambda bucket: S3Store(client, bucket, capabilities=source.capabilities)
    if callable(source) and not hasattr(source, "meta"):  # a boto3 client is not a bucket -> store function
        return source  # type: ignore[no-any-return]
    return lambda bucket: S3Store(source, bucket)


class BucketAdmin:
    """HeadBucket, CreateBucket and lifecycle configurations of the buckets a boto3 S3 client reaches."""

    def __init__(self, client: Any):
        self.client = client

    def check(self, bucket: str) -> None:
        """HeadBucket: returns when the bucket exists and may be used; StoreError (NoSuchBucket, AccessDenied...) otherwise."""
        with answers("HeadBucket", bucket):
            self.client.head_bucket(Bucket=bucket)

    def create(self, bucket: str) -> None:
        with answers("CreateBucket", bucket):
            self.client.create_bucket(Bucket=bucket)

    def lifecycle(self, bucket: str) -> dict[str, Any] | None:
        """The bucket's lifecycle configuration as S3 answers it (``Rules`` and settings), None when it has none."""
        try:
            with answers("GetBucketLifecycleConfiguration", bucket):
                resp = self.client.get_bucket_lifecycle_configuration(Bucket=bucket)
        except StoreError as exc:
            if exc.code == "NoSuchLifecycleConfiguration":
                return None
            raise
        return {k: v for k, v in resp.items() if k != "ResponseMetadata"}

    def put_lifecycle(self, bucket: str, rules: list[dict[str, Any]], settings: Mapping[str, Any] | None = None) -> None:
        """Replace the bucket's lifecycle configuration with ``rules`` (``settings``: e.g. TransitionDefaultMinimumObjectSize)."""
        with answers("PutBucketLifecycleConfiguration", bucket):
            self.client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules}, **dict(settings or {}))

    def delete_lifecycle(self, bucket: str) -> None:
        with answers("DeleteBucketLifecycle", bucket):
            self.client.delete_bucket_lifecycle(Bucket=bucket)
