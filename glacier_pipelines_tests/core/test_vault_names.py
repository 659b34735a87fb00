"""Tests for glacier_pipelines.core.vault_names: names from ArchiveDescription, safety, duplicates, overrides."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_pipelines.core.vault_names import (
    NamedArchive,
    assign_names,
    destination_key,
    load_overrides_csv,
    name_from_description,
    safe_relative,
)

ID = "AAAQQQ-archive_id"


def fg(path: str | bytes, version: int = 4, spaced: bool = False) -> str:
    raw = path.encode("utf-8") if isinstance(path, str) else path
    p = base64.b64encode(raw).decode("ascii")
    if spaced:
        return f"   <m><v>{version}</v><p>{p} </p><lm>20190121T085242Z   </lm>   </m>  "
    return f"<m><v>{version}</v><p>{p}</p><lm>20200101T000000Z</lm></m>"


def fg_v1(path: str) -> str:
    p = base64.b64encode(path.encode("utf-8")).decode("ascii")
    return f"<ArchiveMetadata>   <Path>   {p}  </Path></ArchiveMetadata>"


def row(archive_id: str, description: str | None, created: str = "2020-01-01T00:00:00Z") -> dict:
    return {"ArchiveId": archive_id, "ArchiveDescription": description, "CreationDate": created}


# --- name_from_description -------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 3, 4])
def test_fastglacier_v2_v3_v4(version):
    assert name_from_description(fg("photos/2019/a.jpg", version), ID) == ("photos/2019/a.jpg", "fastglacier")


def test_fastglacier_whitespace_and_unicode():
    assert name_from_description(fg("Фото/日本/pythön.cbb", spaced=True), ID) == ("Фото/日本/pythön.cbb", "fastglacier")


def test_fastglacier_v1_and_quoted():
    path = "RENDER/B:/one/two/shot.0001.dpx"
    assert name_from_description(fg_v1(path), ID) == (path, "fastglacier")
    assert name_from_description(f'"{fg_v1(path)}"', ID) == (path, "fastglacier")
    assert name_from_description(f"'{fg('x/y.txt')}'", ID) == ("x/y.txt", "fastglacier")


@pytest.mark.parametrize(
    "description",
    [
        "<m><v>4</v><p>not base64!</p><lm>20200101T000000Z</lm></m>",  # bad base64
        "<m><v>4</v><p>YWJj=</p></m>",  # bad padding
        fg(b"\xff\xfe bad utf-8"),  # base64 fine, not UTF-8
        "<m><v>4</v><lm>20200101T000000Z</lm></m>",  # no path element
        "<ArchiveMetadata><Path>@@@</Path></ArchiveMetadata>",
    ],
)
def test_unparsable_fastglacier_is_error(description):
    assert name_from_description(description, ID) == (f"00error/{ID}", "error")


def test_fastglacier_empty_path_is_undefined():
    assert name_from_description("<m><v>4</v><p></p><lm>20200101T000000Z</lm></m>", ID) == (f"00undefined/{ID}", "undefined")


def test_json_path_and_lowercase_path():
    d = {"Path": "CB/B:/c01/h01.1094.dpx", "UTCDateModified": "20100310T110623Z"}
    assert name_from_description(json.dumps(d), ID) == ("CB/B:/c01/h01.1094.dpx", "json")
    assert name_from_description(json.dumps({"path": "a/b.txt"}), ID) == ("a/b.txt", "json")


@pytest.mark.parametrize("value", [42, None, ["a"], {"x": 1}, True])
def test_json_path_not_a_string_is_error(value):
    assert name_from_description(json.dumps({"Path": value}), ID) == (f"00error/{ID}", "error")


def test_json_without_path_or_invalid_json_is_raw():
    assert name_from_description('{"name": "x"}', ID) == ('{"name": "x"}', "raw")
    assert name_from_description("{not json", ID) == ("{not json", "raw")
    assert name_from_description('["Path"]', ID) == ('["Path"]', "raw")


def test_json_blank_path_is_undefined():
    assert name_from_description('{"Path": "   "}', ID) == (f"00undefined/{ID}", "undefined")


@pytest.mark.parametrize("description", [None, "", "   ", "\t\n"])
def test_empty_description_is_undefined(description):
    assert name_from_description(description, ID) == (f"00undefined/{ID}", "undefined")


def test_raw_description_is_the_name():
    assert name_from_description("  backups/2020-01.tar.gz ", ID) == ("backups/2020-01.tar.gz", "raw")
    assert name_from_description('"quoted"', ID) == ('"quoted"', "raw")  # only envelopes are unquoted


# --- safe_relative ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b.txt", "a/b.txt"),
        ("dir\\sub\\file.txt", "dir/sub/file.txt"),
        ("C:\\Users\\me\\x.doc", "C:/Users/me/x.doc"),
        ("\\\\server\\share\\f", "server/share/f"),
        ("/abs/path", "abs/path"),
        ("///abs", "abs"),
        ("./a/./b", "a/b"),
        ("a//b///c/", "a/b/c"),
        ("Фото/日本語/é.jpg", "Фото/日本語/é.jpg"),
        ("a..b/..c/d..", "a..b/..c/d.."),
        (".hidden/.x", ".hidden/.x"),
        ("a b/ c ", "a b/ c "),
    ],
)
def test_safe_relative_cleans(name, expected):
    assert safe_relative(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../x",
        "a/../b",
        "a/..",
        "a\\..\\b",
        "..\\..\\etc\\passwd",
        "/../x",
        "...",
        ". .",
        ".. ",
        "",
        "/",
        "./",
        ".",
        "a\x00b",
        "a\nb",
        "tab\there",
        "del\x7f",
        "c1\x85",
        "lone\ud800",
    ],
)
def test_safe_relative_refuses(name):
    assert safe_relative(name) is None


# --- assign_names ----------------------------------------------------------------------------


def test_assign_names_reasons_and_safety():
    archives = [
        row("id1", fg("photos/a.jpg")),
        row("id2", json.dumps({"Path": "docs\\b.pdf"})),
        row("id3", "raw name.txt"),
        row("id4", fg("../../etc/passwd")),  # '..' inside a FastGlacier-decoded path
        row("id5", ""),
        row("id6", "<m><v>4</v><p>!!</p></m>"),
        row("id7", "/absolute/c.txt"),
    ]
    got = {a.archive_id: a for a in assign_names(archives)}
    assert got["id1"] == NamedArchive("id1", "photos/a.jpg", "fastglacier")
    assert got["id2"] == NamedArchive("id2", "docs/b.pdf", "json")
    assert got["id3"] == NamedArchive("id3", "raw name.txt", "raw")
    assert got["id4"] == NamedArchive("id4", "00error/id4", "error")
    assert got["id5"] == NamedArchive("id5", "00undefined/id5", "undefined")
    assert got["id6"] == NamedArchive("id6", "00error/id6", "error")
    assert got["id7"] == NamedArchive("id7", "absolute/c.txt", "raw")


def test_duplicates_get_creation_stamp_and_counter_before_extension():
    archives = [
        row("z-late", fg("photos/a.jpg"), "2021-06-01T12:30:45.123Z"),
        row("b-second", "photos/a.jpg", "2020-01-01T00:00:00Z"),
        row("a-first", "/photos/a.jpg", "2019-05-05T05:05:05Z"),
        row("c-third-same-time", "photos\\a.jpg", "2020-01-01T00:00:00Z"),
        row("other", "photos/b.jpg", "2018-01-01T00:00:00Z"),
    ]
    got = assign_names(archives)
    # deterministic order: CreationDate, then ArchiveId
    assert [a.archive_id for a in got] == ["other", "a-first", "b-second", "c-third-same-time", "z-late"]
    names = {a.archive_id: a.name for a in got}
    assert names["a-first"] == "photos/a.jpg"
    assert names["b-second"] == "photos/a.20200101T000000Z-1.jpg"
    assert names["c-third-same-time"] == "photos/a.20200101T000000Z-2.jpg"
    assert names["z-late"] == "photos/a.20210601T123045Z-3.jpg"
    assert names["other"] == "photos/b.jpg"
    assert len(set(names.values())) == len(names)
    assert assign_names(list(reversed(archives))) == got  # input order does not matter


def test_duplicate_suffix_without_extension_dotfile_and_multi_dot():
    t1, t2 = "2020-01-01T00:00:00Z", "2020-02-03T04:05:06+00:00"
    got = assign_names(
        [
            row("a", "dir/README", t1),
            row("b", "dir/README", t2),
            row("c", ".bashrc", t1),
            row("d", ".bashrc", t2),
            row("e", "x.tar.gz", t1),
            row("f", "x.tar.gz", t2),
        ]
    )
    names = {a.archive_id: a.name for a in got}
    assert names["b"] == "dir/README.20200203T040506Z-1"
    assert names["d"] == ".bashrc.20200203T040506Z-1"
    assert names["f"] == "x.tar.20200203T040506Z-1.gz"


def test_duplicate_suffix_skips_a_name_already_taken():
    got = assign_names([row("a", "p/a.jpg"), row("b", "p/a.jpg"), row("c", "p/a.20200101T000000Z-1.jpg", "2023-01-01T00:00:00Z")])
    names = {a.archive_id: a.name for a in got}
    assert names == {"a": "p/a.jpg", "b": "p/a.20200101T000000Z-2.jpg", "c": "p/a.20200101T000000Z-1.jpg"}


def test_error_names_of_different_archives_do_not_clash():
    got = assign_names([row("a", "../x"), row("b", "../x"), row("c", None)])
    assert {a.name for a in got} == {"00error/a", "00error/b", "00undefined/c"}


def test_creation_date_timezones_and_datetimes():
    got = assign_names(
        [
            row("a", "n", "2020-01-01T02:00:00+02:00"),  # 00:00Z
            {"ArchiveId": "b", "ArchiveDescription": "n", "CreationDate": datetime(2020, 1, 1, 0, 30, tzinfo=timezone.utc)},
            {"ArchiveId": "c", "ArchiveDescription": "n", "CreationDate": datetime(2020, 1, 1, 1, 0)},  # naive = UTC
        ]
    )
    assert [(a.archive_id, a.name) for a in got] == [
        ("a", "n"),
        ("b", "n.20200101T003000Z-1"),
        ("c", "n.20200101T010000Z-2"),
    ]


def test_snake_case_rows_from_parse_inventory_are_accepted():
    import pandas as pd

    rows = [
        {"archive_id": "x", "description": "a.txt", "creation_date": pd.Timestamp("2020-01-01", tz="UTC")},
        {"archive_id": "y", "description": "a.txt", "creation_date": pd.Timestamp("2020-01-02", tz="UTC")},
    ]
    assert [a.name for a in assign_names(rows)] == ["a.txt", "a.20200102T000000Z-1.txt"]


def test_overrides_win_and_are_made_safe():
    archives = [row("a", fg("orig/a.jpg")), row("b", "orig/b.jpg"), row("c", "orig/c.jpg"), row("d", "")]
    overrides = {"a": "renamed\\a.jpg", "b": "../escape", "d": "named/d.bin", "unknown": "ignored"}
    got = {x.archive_id: x for x in assign_names(archives, overrides)}
    assert got["a"] == NamedArchive("a", "renamed/a.jpg", "override")
    assert got["b"] == NamedArchive("b", "00error/b", "error")
    assert got["c"] == NamedArchive("c", "orig/c.jpg", "raw")
    assert got["d"] == NamedArchive("d", "named/d.bin", "override")


def test_override_colliding_with_a_description_is_deduplicated():
    got = assign_names([row("a", "same.txt", "2020-01-01T00:00:00Z"), row("b", "x", "2020-01-02T00:00:00Z")], {"b": "same.txt"})
    assert [(a.name, a.reason) for a in got] == [("same.txt", "raw"), ("same.20200102T000000Z-1.txt", "override")]


@pytest.mark.parametrize(
    "archives",
    [
        [row("a", "x"), row("a", "y")],  # same id twice
        [{"ArchiveId": "a", "ArchiveDescription": "x"}],  # no CreationDate
        [{"ArchiveDescription": "x", "CreationDate": "2020-01-01T00:00:00Z"}],  # no ArchiveId
        [row("a", "x", "yesterday")],
        [row("bad/id", "x")],
        [row("..", "x")],
        [row("", "x")],
    ],
)
def test_assign_names_rejects_bad_rows(archives):
    with pytest.raises(ValueError):
        assign_names(archives)


# --- load_overrides_csv ----------------------------------------------------------------------


def test_load_overrides_csv_with_and_without_header():
    text = 'GlacierArchiveID,FileName\nid-1,photos/a.jpg\n\n  id-2 , "docs/with, comma.pdf"\nid-3,"say ""hi"".txt"\n'
    assert load_overrides_csv(text) == {"id-1": "photos/a.jpg", "id-2": "docs/with, comma.pdf", "id-3": 'say "hi".txt'}
    assert load_overrides_csv("id-1,a\r\nid-2,b\r\n") == {"id-1": "a", "id-2": "b"}
    assert load_overrides_csv("\ufeffarchive id,name\nid-1,é/ü.txt") == {"id-1": "é/ü.txt"}


def test_load_overrides_csv_empty_and_aws_template():
    assert load_overrides_csv("") == {}
    assert load_overrides_csv("GlacierArchiveID,FileName\n,") == {}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("id-1,a\nid-2\n", 2),  # one field
        ("id-1,a\n\nid-2,b,c\n", 3),  # three fields
        ("archive_id,name\nid-1,\n", 2),  # empty name
        ("id-1,a\n,b\n", 2),  # empty id
        ("bad/id,a\n", 1),  # not an archive id
        ("id-1,a\nid-2,b\nid-1,c\n", 3),  # conflicting duplicate
        ('id-1,"multi\nline"\nid-2\n', 3),  # numbering follows physical lines
    ],
)
def test_load_overrides_csv_errors_name_the_line(text, line):
    with pytest.raises(ValueError, match=rf"line {line}\b"):
        load_overrides_csv(text)


def test_load_overrides_csv_identical_duplicate_is_fine():
    assert load_overrides_csv("id-1,a\nid-1,a\n") == {"id-1": "a"}


# --- destination_key -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "vault", "name", "key"),
    [
        ("p", "v", "a/b.txt", "p/v/a/b.txt"),
        ("/migrated/2024/", "My-Vault_1.0", "x", "migrated/2024/My-Vault_1.0/x"),
        ("", "v", "x", "v/x"),
        ("p//q", "v", "/x//y", "p/q/v/x/y"),
    ],
)
def test_destination_key(prefix, vault, name, key):
    assert destination_key(prefix, vault, name) == key


@pytest.mark.parametrize("vault", ["", "my vault", "a/b", "..", ".", "x" * 256, "vä"])
def test_destination_key_rejects_vault_names(vault):
    with pytest.raises(ValueError):
        destination_key("p", vault, "x")


@pytest.mark.parametrize(("prefix", "name"), [("p", "../x"), ("p", ""), ("../p", "x"), ("p", "a\x00")])
def test_destination_key_rejects_unsafe_parts(prefix, name):
    with pytest.raises(ValueError):
        destination_key(prefix, "v", name)


def test_destination_key_rejects_overlong_keys():
    assert destination_key("p", "v", "x" * 1020) == "p/v/" + "x" * 1020
    with pytest.raises(ValueError):
        destination_key("p", "v", "x" * 1021)


# --- property: whatever the descriptions, names are safe and unique ----------------------------

_TRICKY = st.sampled_from(["..", ".", "/", "\\", "../", "..\\", "//", " ", "\x00", "\n", "é", "日", ".jpg", "a"])
_NAMEISH = st.lists(st.one_of(_TRICKY, st.text(max_size=8)), max_size=12).map("".join)
_DESCRIPTIONS = st.one_of(
    st.none(),
    st.text(max_size=120),
    _NAMEISH,
    _NAMEISH.map(fg),
    st.binary(max_size=40).map(fg),
    _NAMEISH.map(lambda s: json.dumps({"Path": s})),
    st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)).map(lambda v: json.dumps({"path": v})),
    st.text(max_size=30).map(lambda s: f"<m><v>4</v><p>{s}</p></m>"),
)
_DATES = st.datetimes(min_value=datetime(2012, 8, 20), max_value=datetime(2030, 1, 1)).map(
    lambda d: d.replace(microsecond=0).isoformat() + "Z"
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_DESCRIPTIONS, st.sampled_from(["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"]) | _DATES), max_size=12),
    st.dictionaries(st.sampled_from([f"id{i}" for i in range(12)]), _NAMEISH, max_size=4),
)
def test_assign_names_never_escapes_the_prefix(entries, overrides):
    archives = [row(f"id{i}", desc, created) for i, (desc, created) in enumerate(entries)]
    named = assign_names(archives, overrides)
    assert sorted(a.archive_id for a in named) == sorted(r["ArchiveId"] for r in archives)
    names = [a.name for a in named]
    assert len(set(names)) == len(names)
    for a in named:
        key = destination_key("p", "v", a.name)
        assert key.startswith("p/v/")
        segments = key.split("/")
        assert ".." not in segments and "." not in segments and "" not in segments
        assert safe_relative(a.name) == a.name
        if a.reason in ("error", "undefined"):
            assert a.name == f"00{a.reason}/{a.archive_id}" or a.name.startswith(f"00{a.reason}/{a.archive_id}.")
