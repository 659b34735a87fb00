"""The checker itself: each kind of violation it exists to find is planted once and must be counted."""

from __future__ import annotations

import pytest

from glacier_pipelines_tests.faults import invariants

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_the_checker_counts_what_it_is_meant_to_find(fault_env):
    reqs = []
    for i in range(3):
        data = fault_env.data(500 + i)
        reqs.append(fault_env.request(f"r{i}", fault_env.file(f"r{i}", data), data))
    fault_env.submit(*reqs)
    fault_env.run_batch(fault_env.setup())
    assert fault_env.check().clean(), fault_env.check().summary()

    s3, bucket, catalog = fault_env.s3, fault_env.bucket, fault_env.catalog()
    objects = catalog.objects("lab")
    s3.put_object(Bucket=bucket, Key="archive/lab/dir/stray", Body=b"nobody names me")  # orphaned object
    s3.create_multipart_upload(Bucket=bucket, Key="archive/lab/dir/abandoned")  # orphaned upload
    s3.put_object(Bucket=bucket, Key=objects[0].key, Body=b"not the source bytes")  # mismatched
    fault_env.submitted.append(invariants.Submitted("lab", "never-sent", b"x"))  # lost: never recorded
    published = [("lab", "r1", "SUCCESS"), ("lab", "r1", "SUCCESS"), ("lab", "r2", "SUCCESS")]  # r0 never published, r1 twice

    tally = fault_env.check(published=published)
    assert (tally.lost, tally.duplicated, tally.orphaned, tally.mismatched) == (2, 1, 2, 1), tally.summary()

    cleaned = fault_env.check(published=published, cleanup=True)  # the project's clean-up aborts the abandoned upload
    assert cleaned.aborted_by_cleanup == 1 and cleaned.orphaned == 1, cleaned.summary()
