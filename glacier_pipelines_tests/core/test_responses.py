"""Tests for glacier_pipelines.core.responses: the REGARDS StorageWorkerResponseDto shape."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_pipelines.core.responses import response_body, source_filename, success_content

CHECKSUM = "9e107d9d372bb6826bd81d3542a419d6"


def content(**overrides):
    kwargs = dict(
        bucket="archive-bucket",
        key="archive/acme/2024/06/" + CHECKSUM,
        checksum=CHECKSUM,
        algorithm="MD5",
        size=1234,
        width=None,
        height=None,
        source_url="file:///data/in/report.pdf",
    )
    kwargs.update(overrides)
    return success_content(**kwargs)


def test_success_content_shape():
    c = content()
    assert set(c) == {"fileProcessingMetadata", "storeFileMetadata"}
    assert c["fileProcessingMetadata"] == {
        "smallFileManaged": False,
        "cachePath": None,
        "filename": "report.pdf",
        "storeParentUrl": "s3://archive-bucket/archive/acme/2024/06",
        "storeParentPath": "archive/acme/2024/06",
    }
    assert c["storeFileMetadata"] == {
        "checksum": CHECKSUM,
        "algorithm": "MD5",
        "storedFileUrl": f"s3://archive-bucket/archive/acme/2024/06/{CHECKSUM}",
        "fileSizeInBytes": 1234,
    }
    json.dumps(c)  # serialisable as is


def test_success_content_small_file_and_cache_path():
    c = content(small_file_managed=True, cache_path="/cache/acme/x")
    assert c["fileProcessingMetadata"]["smallFileManaged"] is True
    assert c["fileProcessingMetadata"]["cachePath"] == "/cache/acme/x"


def test_image_fields_present_when_both_given():
    meta = content(width=640, height=480)["storeFileMetadata"]
    assert meta["widthInPx"] == 640
    assert meta["heightInPx"] == 480


def test_image_zero_dimensions_are_still_reported():
    meta = content(width=0, height=0)["storeFileMetadata"]
    assert meta["widthInPx"] == 0 and meta["heightInPx"] == 0


@pytest.mark.parametrize("width, height", [(None, None), (640, None), (None, 480)])
def test_image_fields_absent_unless_both_given(width, height):
    meta = content(width=width, height=height)["storeFileMetadata"]
    assert "widthInPx" not in meta
    assert "heightInPx" not in meta


def test_key_without_directory():
    c = content(key=CHECKSUM)
    assert c["fileProcessingMetadata"]["storeParentPath"] == ""
    assert c["fileProcessingMetadata"]["storeParentUrl"] == "s3://archive-bucket/"
    assert c["storeFileMetadata"]["storedFileUrl"] == f"s3://archive-bucket/{CHECKSUM}"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("file:///data/in/report.pdf", "report.pdf"),
        ("https://example.org/files/my%20file%C3%A9.tif?token=abc&x=/y/z#frag", "my fileé.tif"),
        ("https://example.org/files/photo.jpg?download=1", "photo.jpg"),
        ("https://example.org/a/b/", "b"),
        ("s3://bucket/some/key.bin", "key.bin"),
        ("https://example.org", "file"),
        ("https://example.org/", "file"),
        ("file:///data/100%25.txt", "100%.txt"),
        ("https://h/d/%E6%97%A5%E6%9C%AC.txt", "日本.txt"),
    ],
)
def test_filename_from_url(url, expected):
    assert source_filename(url) == expected
    assert content(source_url=url)["fileProcessingMetadata"]["filename"] == expected


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1, max_size=30))
def test_filename_round_trips_percent_encoding(name):
    url = "https://example.org/dir/" + quote(name, safe="") + "?q=1"
    expected = name.rstrip("/") or "file"
    assert source_filename(url) == expected


def test_response_body():
    c = content()
    body = response_body("req-1", "SUCCESS", ["stored", "verified"], c)
    assert body == {"requestId": "req-1", "status": "SUCCESS", "messages": ["stored", "verified"], "content": c}


def test_response_body_defaults_and_copies_messages():
    messages = ["bad checksum"]
    body = response_body("req-2", "INVALID_CONTENT", messages)
    assert body == {"requestId": "req-2", "status": "INVALID_CONTENT", "messages": ["bad checksum"], "content": {}}
    messages.append("later")
    assert body["messages"] == ["bad checksum"]  # a copy, not the caller's list
    assert response_body("r", "ERROR", (m for m in ["a", "b"]))["messages"] == ["a", "b"]
    assert json.loads(json.dumps(body)) == body
