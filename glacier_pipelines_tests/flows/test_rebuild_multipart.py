"""A multipart object (CRC32 part checksums) comes back from `catalog rebuild` with the checksum the asset check compares."""

from __future__ import annotations

import random

from glacier_pipelines.core.objectstore import S3Store
from glacier_pipelines.core.transfer import verify_stored
from glacier_pipelines.flows.rebuild import rebuild
from glacier_pipelines_tests.conftest import BUCKET, MiB, s3_client
from glacier_pipelines_tests.flows.test_rebuild import _lose_the_catalog


def test_rebuilt_multipart_object_keeps_its_crc32_composite(archive, instance):
    data = random.Random(18).randbytes(6 * MiB + 3)  # two parts at the tests' 5 MiB
    archive.submit(archive.request("lab", archive.file("big", data), data, requestId="big"))
    assert archive.run("lab", instance).success
    [before] = archive.catalog().objects("lab")
    assert before.s3_checksum.endswith("-2") and len(before.s3_checksum.partition("-")[0]) == 8  # a CRC32 composite

    fresh = _lose_the_catalog(archive.catalog())
    rebuild(fresh, s3_client(), BUCKET, "archive")
    [after] = fresh.objects("lab")
    assert (after.key, after.size) == (before.key, before.size)
    assert after.s3_checksum.partition("-")[0] == before.s3_checksum.partition("-")[0]  # moto drops the -N on HEAD
    problems = verify_stored(
        S3Store(s3_client(), BUCKET), key=after.key, s3_checksum=after.s3_checksum, size=after.size, storage_class=after.storage_class
    )
    assert problems == []
