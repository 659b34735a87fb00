"""Tests for glacier_pipelines.core.keys: tenants, directory sanitizing and the object key layout."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from glacier_pipelines.core.keys import (
    MAX_DIRECTORY_LENGTH,
    MAX_KEY_LENGTH,
    MAX_SEGMENT_LENGTH,
    InvalidKey,
    object_key,
    sanitize_directory,
    tenant_prefix,
    validate_tenant,
)

CHECKSUM = hashlib.md5(b"payload").hexdigest()

# -- validate_tenant ---------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["a", "0", "acme", "project-1", "my_tenant", "a" * 63, "9lives", "x-_-y"])
def test_validate_tenant_accepts(tenant):
    assert validate_tenant(tenant) == tenant


@pytest.mark.parametrize(
    "tenant",
    ["", "ACME", "Acme", "my tenant", " acme", "acme ", "a" * 64, "-acme", "_acme", "ac/me", "ac.me", "ac\\me", "acmé", "ac\tme"],
)
def test_validate_tenant_refuses(tenant):
    with pytest.raises(InvalidKey, match="is not valid"):
        validate_tenant(tenant)


@pytest.mark.parametrize("tenant", [None, 42, b"acme", ["acme"]])
def test_validate_tenant_refuses_non_strings(tenant):
    with pytest.raises(InvalidKey):
        validate_tenant(tenant)


def test_invalid_key_is_a_value_error():
    assert issubclass(InvalidKey, ValueError)


# Regression: "$" with re.match also matches before a trailing newline.
@pytest.mark.parametrize("tenant", ["acme\n", "a\n"])
def test_validate_tenant_refuses_trailing_newline(tenant):
    with pytest.raises(InvalidKey):
        validate_tenant(tenant)


# -- sanitize_directory ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("", ""),
        ("a", "a"),
        ("a/b/c", "a/b/c"),
        ("a/./b//c/", "a/b/c"),
        ("./a", "a"),
        ("a/.", "a"),
        (".", ""),
        ("./././", ""),
        ("//", None),  # absolute
        ("a///b", "a/b"),
        (" a / b ", "a/b"),
        ("2024/06/raw data", "2024/06/raw data"),
        ('a*b?c<d>e|f"g', "a_b_c_d_e_f_g"),
        ("x:y", "x_y"),
        ("a#b%c&d", "a_b_c_d"),
        ("données/été", "données/été"),
        ("日本語/данные", "日本語/данные"),
        ("...", "___"),
        ("a/.../b", "a/___/b"),
        (".hidden/file.v2", ".hidden/file.v2"),
        ("keep-these_=+@,()'~!.", "keep-these_=+@,()'~!."),
    ],
)
def test_sanitize_directory(raw, expected):
    if expected is None:
        with pytest.raises(InvalidKey):
            sanitize_directory(raw)
    else:
        assert sanitize_directory(raw) == expected


def test_sanitize_directory_normalizes_to_nfc():
    decomposed = "e\u0301t\u0065\u0301"  # "été" in NFD
    assert sanitize_directory(decomposed) == unicodedata.normalize("NFC", decomposed)
    assert sanitize_directory(decomposed) == "été"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("..", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("../etc", "'..'"),
        (" .. /x", "'..'"),
        ("/etc", "relative"),
        ("/", "relative"),
        ("~/x", "relative"),
        ("~", "relative"),
        ("C:\\x", "relative"),
        ("C:/x", "relative"),
        ("c:", "relative"),
        ("a\\b", "backslash"),
        ("..\\..\\x", "backslash"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x1fb", "control"),
        ("a\x7fb", "control"),
        ("a\u200bb", "control"),  # zero-width space (Cf)
        ("a\u202eb", "control"),  # right-to-left override (Cf)
        ("a\ue000b", "control"),  # private use (Co)
    ],
)
def test_sanitize_directory_refuses(raw, fragment):
    with pytest.raises(InvalidKey) as info:
        sanitize_directory(raw)
    assert fragment in str(info.value)


def test_sanitize_directory_refuses_non_string():
    with pytest.raises(InvalidKey, match="string"):
        sanitize_directory(None)  # type: ignore[arg-type]


def test_sanitize_directory_length_limits():
    at_limit = "/".join(["a" * 200, "b" * 200, "c" * (MAX_DIRECTORY_LENGTH - 402)])
    assert len(at_limit) == MAX_DIRECTORY_LENGTH
    assert sanitize_directory(at_limit) == at_limit
    with pytest.raises(InvalidKey, match="longer than"):
        sanitize_directory(at_limit + "c")


def test_sanitize_directory_segment_limit_counts_utf8_bytes():
    assert sanitize_directory("a" * MAX_SEGMENT_LENGTH) == "a" * MAX_SEGMENT_LENGTH
    with pytest.raises(InvalidKey, match="segment"):
        sanitize_directory("a" * (MAX_SEGMENT_LENGTH + 1))
    # 128 two-byte characters: 128 characters but 256 bytes.
    with pytest.raises(InvalidKey, match="segment"):
        sanitize_directory("é" * 128)
    assert sanitize_directory("é" * 127) == "é" * 127


# -- object_key / tenant_prefix ----------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix, tenant, directory, checksum, expected",
    [
        ("archive", "acme", "a/b", "ABCDEF", "archive/acme/a/b/abcdef"),
        ("archive/", "acme", "a/b/", "abcdef", "archive/acme/a/b/abcdef"),
        ("/archive/", "acme", "/a/b", "abcdef", "archive/acme/a/b/abcdef"),
        ("", "acme", "a", "abcdef", "acme/a/abcdef"),
        ("/", "acme", "", "abcdef", "acme/abcdef"),
        ("archive", "acme", "", "AbCdEf", "archive/acme/abcdef"),
        ("x/y", "t-1", "d", "00", "x/y/t-1/d/00"),
    ],
)
def test_object_key_layout(prefix, tenant, directory, checksum, expected):
    key = object_key(prefix, tenant, directory, checksum)
    assert key == expected
    assert "//" not in key
    assert not key.startswith("/")
    assert key.startswith(tenant_prefix(prefix, tenant))


def test_object_key_refuses_invalid_tenant():
    with pytest.raises(InvalidKey):
        object_key("archive", "ACME", "a", CHECKSUM)


def test_object_key_length_limit_in_utf8_bytes():
    prefix = "archive"
    base = f"{prefix}/acme//{CHECKSUM}"  # the directory goes between the slashes
    room = MAX_KEY_LENGTH - len(base)
    fits = "a" * room
    assert len(object_key(prefix, "acme", fits, CHECKSUM).encode()) == MAX_KEY_LENGTH
    with pytest.raises(InvalidKey, match="longer than"):
        object_key(prefix, "acme", fits + "a", CHECKSUM)
    # Same number of characters, but multi-byte: over the byte limit.
    with pytest.raises(InvalidKey):
        object_key(prefix, "acme", "é" * room, CHECKSUM)


def test_object_key_over_long_from_a_valid_directory():
    # A directory that passes sanitize_directory can still make a key too long (UTF-8 bytes).
    directory = sanitize_directory("/".join(["日" * 80] * 6))
    assert len(directory.encode()) > MAX_KEY_LENGTH
    with pytest.raises(InvalidKey):
        object_key("archive", "acme", directory, CHECKSUM)


@pytest.mark.parametrize(
    "prefix, tenant, expected",
    [("archive", "acme", "archive/acme/"), ("/archive/", "acme", "archive/acme/"), ("", "acme", "acme/"), ("a/b", "t", "a/b/t/")],
)
def test_tenant_prefix(prefix, tenant, expected):
    assert tenant_prefix(prefix, tenant) == expected


def test_tenant_prefix_refuses_invalid_tenant():
    with pytest.raises(InvalidKey):
        tenant_prefix("archive", "../other")


def test_tenant_prefixes_do_not_nest():
    # "acme/" must not be a prefix of "acme-2/..." keys.
    key = object_key("archive", "acme-2", "d", CHECKSUM)
    assert not key.startswith(tenant_prefix("archive", "acme"))


# -- properties --------------------------------------------------------------------------------

directory_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(["", ".", "..", "...", "a", "é", " ", "~", "C:", "\\", "*", "\n", "日本", "x y"]), max_size=8).map("/".join),
    st.text(alphabet=st.sampled_from("./\\~:a "), max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(directory_text, st.sampled_from(["", "archive", "/archive/", "a/b"]), st.sampled_from(["acme", "t-1", "x"]))
def test_sanitize_directory_never_escapes(raw, prefix, tenant):
    try:
        cleaned = sanitize_directory(raw)
    except InvalidKey:
        return
    segments = cleaned.split("/")
    assert ".." not in segments
    assert not cleaned.startswith("/")
    assert "\\" not in cleaned
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in cleaned)
    if cleaned:
        assert "" not in segments and "." not in segments
    key = object_key(prefix, tenant, cleaned, CHECKSUM.upper())
    assert key.startswith(tenant_prefix(prefix, tenant))
    assert key.endswith("/" + CHECKSUM)
    assert "//" not in key


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn")), min_size=1, max_size=40))
def test_sanitize_directory_single_segment_keeps_word_characters(raw):
    assume("/" not in raw and "\\" not in raw)
    assume(not raw.startswith("~") and not (len(raw) > 1 and raw[1] == ":"))
    try:
        cleaned = sanitize_directory(raw)
    except InvalidKey:
        assert raw.strip() == ".."
        return
    assert "/" not in cleaned
    stripped = unicodedata.normalize("NFC", raw.strip())
    if stripped in ("", "."):
        assert cleaned == ""
    else:
        # Character by character: kept, or replaced by "_" (NFC keeps the count here only if unchanged).
        assert len(cleaned) == len(stripped)
        for before, after in zip(stripped, cleaned):
            assert after == before or after == "_"
            if before.isalnum():
                assert after == before
