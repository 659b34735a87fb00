"""Tests for glacier_pipelines.core.vault_inventory: Glacier inventory-retrieval output, JSON and CSV."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glacier_pipelines.core.vault_inventory import COLUMNS, inventory_summary, parse_inventory
from glacier_pipelines.core.vault_names import assign_names

H1 = "a" * 64
H2 = "0123456789ABCDEF" * 4  # upper case in the source, lower case in the frame
H3 = "f" * 63 + "0"

ARCHIVES = [
    {
        "ArchiveId": "id-1_AAA",
        "ArchiveDescription": "plain.txt",
        "CreationDate": "2012-05-15T17:19:46.700Z",
        "Size": 3145728,
        "SHA256TreeHash": H1,
    },
    {
        "ArchiveId": "id-2_BBB",
        "ArchiveDescription": 'with, a comma and "quotes"',
        "CreationDate": "2013-01-02T03:04:05Z",
        "Size": 0,
        "SHA256TreeHash": H2,
    },
    {
        "ArchiveId": "id-3_CCC",
        "ArchiveDescription": "multi\nline, C:\\dir\\file.txt",
        "CreationDate": "2011-12-31T23:59:59.999Z",
        "Size": 5 * 2**40,
        "SHA256TreeHash": H3,
    },
]
JSON_BODY = json.dumps(
    {
        "VaultARN": "arn:aws:glacier:us-east-1:012345678901:vaults/examplevault",
        "InventoryDate": "2013-03-20T17:03:43Z",
        "ArchiveList": ARCHIVES,
    }
)
# Glacier style: quoted fields, a quote inside a field escaped with a backslash; other backslashes as is.
CSV_BODY = (
    "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash\n"
    f'"id-1_AAA","plain.txt","2012-05-15T17:19:46.700Z","3145728","{H1}"\n'
    f'"id-2_BBB","with, a comma and \\"quotes\\"","2013-01-02T03:04:05Z","0","{H2}"\n'
    f'"id-3_CCC","multi\nline, C:\\dir\\file.txt","2011-12-31T23:59:59.999Z","{5 * 2**40}","{H3}"\n'
)
# RFC 4180 style: doubled quotes, unquoted simple fields, CRLF line ends, columns reordered.
CSV_RFC_BODY = (
    "SHA256TreeHash,Size,CreationDate,ArchiveDescription,ArchiveId\r\n"
    f"{H1},3145728,2012-05-15T17:19:46.700Z,plain.txt,id-1_AAA\r\n"
    f'{H2},0,2013-01-02T03:04:05Z,"with, a comma and ""quotes""",id-2_BBB\r\n'
    f'{H3},{5 * 2**40},2011-12-31T23:59:59.999Z,"multi\nline, C:\\dir\\file.txt",id-3_CCC\r\n'
)


def test_json_and_csv_give_the_same_frame():
    from_json = parse_inventory(JSON_BODY.encode(), "JSON")
    from_csv = parse_inventory(CSV_BODY, "csv")
    from_rfc = parse_inventory(CSV_RFC_BODY.encode(), "CSV")
    pd.testing.assert_frame_equal(from_json, from_csv)
    pd.testing.assert_frame_equal(from_json, from_rfc)

    assert list(from_json.columns) == COLUMNS
    assert str(from_json["creation_date"].dtype) == "datetime64[ns, UTC]"
    assert from_json["size"].dtype == "int64"
    assert list(from_json["description"]) == [a["ArchiveDescription"] for a in ARCHIVES]
    assert list(from_json["sha256_tree_hash"]) == [H1, H2.lower(), H3]
    assert from_json.loc[0, "creation_date"] == pd.Timestamp("2012-05-15T17:19:46.700", tz="UTC")
    assert from_json.loc[2, "size"] == 5 * 2**40
    assert from_json.attrs == {
        "vault_arn": "arn:aws:glacier:us-east-1:012345678901:vaults/examplevault",
        "inventory_date": "2013-03-20T17:03:43Z",
    }


def test_summary():
    df = parse_inventory(JSON_BODY, "JSON")
    assert inventory_summary(df) == {
        "archives": 3,
        "bytes": 3145728 + 5 * 2**40,
        "oldest": "2011-12-31T23:59:59.999000+00:00",
        "newest": "2013-01-02T03:04:05+00:00",
    }


def test_non_utc_and_naive_dates_become_utc():
    body = CSV_BODY.replace("2013-01-02T03:04:05Z", "2013-01-02T05:04:05+02:00")
    body = body.replace("2012-05-15T17:19:46.700Z", "2012-05-15T17:19:46.700")
    df = parse_inventory(body, "CSV")
    pd.testing.assert_frame_equal(df, parse_inventory(CSV_BODY, "CSV"))


def test_empty_inventory():
    from_json = parse_inventory(json.dumps({"VaultARN": "arn", "InventoryDate": "2020-01-01T00:00:00Z", "ArchiveList": []}), "JSON")
    from_csv = parse_inventory("ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash\n", "CSV")
    assert list(from_json.columns) == COLUMNS and len(from_json) == 0
    pd.testing.assert_frame_equal(from_json, from_csv)
    assert str(from_csv["creation_date"].dtype) == "datetime64[ns, UTC]"
    assert from_csv["size"].dtype == "int64"
    assert inventory_summary(from_csv) == {"archives": 0, "bytes": 0, "oldest": None, "newest": None}


def test_null_description_and_bom():
    archives = [dict(ARCHIVES[0], ArchiveDescription=None)]
    df = parse_inventory(b"\xef\xbb\xbf" + json.dumps({"ArchiveList": archives}).encode(), "json")
    assert df.loc[0, "description"] == ""
    assert parse_inventory("\ufeff" + CSV_BODY, "CSV").shape == (3, 5)


def test_frame_feeds_assign_names():
    df = parse_inventory(CSV_BODY, "CSV")
    named = assign_names(df.to_dict("records"))
    assert [(a.archive_id, a.name) for a in named] == [
        ("id-3_CCC", "00error/id-3_CCC"),  # a newline is a control character: refused
        ("id-1_AAA", "plain.txt"),
        ("id-2_BBB", 'with, a comma and "quotes"'),
    ]


def _json_with(**changes) -> str:
    return json.dumps({"ArchiveList": [dict(ARCHIVES[0], **changes)]})


def _json_without(field: str) -> str:
    item = dict(ARCHIVES[0])
    del item[field]
    return json.dumps({"ArchiveList": [item]})


@pytest.mark.parametrize(
    ("body", "fmt", "match"),
    [
        (JSON_BODY, "XML", "JSON or CSV"),
        ("{not json", "JSON", "not valid JSON"),
        ('{"VaultARN": "x"}', "JSON", "ArchiveList"),
        ('{"ArchiveList": {}}', "JSON", "not a list"),
        ('{"ArchiveList": [1]}', "JSON", "not an object"),
        ("[]", "JSON", "ArchiveList"),
        (_json_without("Size"), "JSON", "lacks Size"),
        (_json_without("SHA256TreeHash"), "JSON", "lacks SHA256TreeHash"),
        (_json_with(Size="12.5"), "JSON", "bad Size"),
        (_json_with(Size=-1), "JSON", "bad Size"),
        (_json_with(Size=1.0), "JSON", "bad Size"),
        (_json_with(Size=True), "JSON", "bad Size"),
        (_json_with(Size=None), "JSON", "bad Size"),
        (_json_with(SHA256TreeHash="abc"), "JSON", "length 3"),
        (_json_with(SHA256TreeHash="a" * 65), "JSON", "length 65"),
        (_json_with(SHA256TreeHash="g" * 64), "JSON", "not hexadecimal"),
        (_json_with(SHA256TreeHash=None), "JSON", "not a string"),
        (_json_with(CreationDate="not a date"), "JSON", "bad CreationDate"),
        (_json_with(CreationDate=""), "JSON", "bad CreationDate"),
        (_json_with(ArchiveId=""), "JSON", "ArchiveId"),
        (_json_with(ArchiveDescription=5), "JSON", "not a string"),
        (json.dumps({"ArchiveList": [ARCHIVES[0], ARCHIVES[0]]}), "JSON", "listed twice"),
        (b"\xff\xfe{}", "JSON", "not UTF-8"),
        ("", "CSV", "no header"),
        ("ArchiveId,ArchiveDescription,CreationDate,Size\n", "CSV", "lacks column.*SHA256TreeHash"),
        (CSV_BODY.replace('"3145728"', '"3 MB"'), "CSV", "line 2: bad Size"),
        (CSV_BODY.replace('"0"', '""'), "CSV", "line 3: bad Size"),
        (CSV_BODY.replace(H3, H3[:40]), "CSV", "line 4: SHA256TreeHash has length 40"),
        (CSV_BODY.replace('"2012-05-15T17:19:46.700Z"', '"2012-13-45"'), "CSV", "line 2: bad CreationDate"),
        (CSV_BODY + '"id-4","never closed\n', "CSV", "line 6: unterminated"),
        (CSV_BODY + f'"id-4","x"y,"2020-01-01T00:00:00Z","1","{H1}"\n', "CSV", "after a closing quote"),
        (CSV_BODY + f'"id-4","2020-01-01T00:00:00Z","1","{H1}"\n', "CSV", "line 6: 4 fields"),
        (CSV_BODY + f'"id-1_AAA","dup","2020-01-01T00:00:00Z","1","{H1}"\n', "CSV", "line 6: ArchiveId id-1_AAA listed twice"),
    ],
)
def test_malformed_inventories(body, fmt, match):
    with pytest.raises(ValueError, match=match):
        parse_inventory(body, fmt)


def test_the_content_decides_the_format_not_the_format_asked_for():
    from_json = parse_inventory(JSON_BODY, "CSV")  # asked for CSV, Glacier answered JSON
    from_csv = parse_inventory(CSV_BODY, "JSON")  # asked for JSON, Glacier answered CSV
    pd.testing.assert_frame_equal(from_json, parse_inventory(JSON_BODY, "JSON"))
    pd.testing.assert_frame_equal(from_csv, parse_inventory(CSV_BODY, "CSV"))
    pd.testing.assert_frame_equal(from_json.reset_index(drop=True), from_csv.reset_index(drop=True))
