"""Fixtures shared by the Dagster definition tests."""

import pytest


@pytest.fixture
def packing(archive, monkeypatch):
    """STANDARD class so the test can read packages back; packages close at 3,000 bytes of members."""
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "1000")
    monkeypatch.setenv("GLACIER_PACKAGE_TARGET_BYTES", "3000")
    return archive
