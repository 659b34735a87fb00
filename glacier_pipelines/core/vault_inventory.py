"""Parse the output of an S3 Glacier vault inventory-retrieval job (JSON or CSV) into a DataFrame.

Sources: AWS *Amazon S3 Glacier Developer Guide*, "Get Job Output (GET output)" and
"Downloading a Vault Inventory in Amazon S3 Glacier". The JSON output is::

    {"VaultARN": "...", "InventoryDate": "2013-03-20T17:03:43Z",
     "ArchiveList": [{"ArchiveId": "...", "ArchiveDescription": "...",
                      "CreationDate": "2012-03-20T17:03:43Z", "Size": 2140123,
                      "SHA256TreeHash": "..."}]}

and the CSV output has the columns ``ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash``
"with the same definitions as the corresponding JSON fields", one archive per record.

CSV quoting: the documentation does not spell it out. Glacier quotes fields and escapes a
double quote inside a quoted field with a backslash (``descrip"tion`` -> ``"descrip\\"tion"``,
as reported in the review of aws-solutions/amazon-s3-glacier-refreezer PR #123). This parser
therefore accepts, inside a quoted field, ``\\"`` and ``\\\\`` as escapes for ``"`` and ``\\``,
and also RFC 4180's doubled ``""``; any other backslash is kept as is (Windows paths are common
in descriptions), and quoted fields may span lines.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

COLUMNS = ["archive_id", "description", "creation_date", "size", "sha256_tree_hash"]
SOURCE_FIELDS = ["ArchiveId", "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash"]
_HEX = frozenset("0123456789abcdef")


def _text(body: bytes | str) -> str:
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            return bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"inventory is not UTF-8: {exc}") from exc
    if isinstance(body, str):
        return body[1:] if body.startswith("\ufeff") else body
    raise ValueError(f"inventory body must be bytes or str, not {type(body).__name__}")


def _csv_records(text: str) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` per record; blank lines skipped."""
    records: list[tuple[int, list[str]]] = []
    i, n, line = 0, len(text), 1
    row: list[str] = []
    record_line = 1
    while True:
        if i < n and text[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise ValueError(f"CSV inventory line {record_line}: unterminated quoted field")
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                    buf.append(text[i + 1])
                    i += 2
                elif c == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    if c == "\n":
                        line += 1
                    buf.append(c)
                    i += 1
            if i < n and text[i] not in ",\r\n":
                raise ValueError(f"CSV inventory line {line}: unexpected {text[i]!r} after a closing quote")
            row.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in ",\r\n":
                j += 1
            row.append(text[i:j])
            i = j
        if i < n and text[i] == ",":
            i += 1
            continue
        if i < n and text[i] == "\r":
            i += 1
        if i < n and text[i] == "\n":
            i += 1
        if row != [""]:
            records.append((record_line, row))
        row = []
        line += 1
        record_line = line
        if i >= n:
            return records


def _rows_from_csv(text: str) -> list[tuple[str, dict[str, Any]]]:
    records = _csv_records(text)
    if not records:
        raise ValueError("CSV inventory is empty: no header line")
    _, header = records[0]
    header = [h.strip() for h in header]
    missing = [f for f in SOURCE_FIELDS if f not in header]
    if missing:
        raise ValueError(f"CSV inventory header lacks column(s) {', '.join(missing)}; got {header}")
    index = {f: header.index(f) for f in SOURCE_FIELDS}
    rows = []
    for line, fields in records[1:]:
        if len(fields) != len(header):
            raise ValueError(f"CSV inventory line {line}: {len(fields)} fields, header has {len(header)}")
        rows.append((f"line {line}", {f: fields[k] for f, k in index.items()}))
    return rows


def _rows_from_json(text: str, attrs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"JSON inventory is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or "ArchiveList" not in doc:
        raise ValueError("JSON inventory must be an object with an ArchiveList")
    archives = doc["ArchiveList"]
    if not isinstance(archives, list):
        raise ValueError("JSON inventory ArchiveList is not a list")
    for key, attr in (("VaultARN", "vault_arn"), ("InventoryDate", "inventory_date")):
        if doc.get(key) is not None:
            attrs[attr] = doc[key]
    rows = []
    for k, item in enumerate(archives):
        where = f"ArchiveList[{k}]"
        if not isinstance(item, dict):
            raise ValueError(f"JSON inventory {where} is not an object")
        missing = [f for f in SOURCE_FIELDS if f not in item]
        if missing:
            raise ValueError(f"JSON inventory {where} lacks {', '.join(missing)}")
        rows.append((where, item))
    return rows


def _size(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: bad Size {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and value.strip().isdigit():
        size = int(value.strip())
    else:
        raise ValueError(f"{where}: bad Size {value!r} (expected a whole number of bytes)")
    if size < 0 or size >= 2**63:
        raise ValueError(f"{where}: bad Size {value!r}")
    return size


def _tree_hash(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: SHA256TreeHash {value!r} is not a string")
    digest = value.strip().lower()
    if len(digest) != 64:
        raise ValueError(f"{where}: SHA256TreeHash has length {len(digest)}, expected 64 hex characters")
    if not set(digest) <= _HEX:
        raise ValueError(f"{where}: SHA256TreeHash {value!r} is not hexadecimal")
    return digest


def _timestamp(value: Any, where: str) -> pd.Timestamp:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: bad CreationDate {value!r}")
    try:
        ts = pd.Timestamp(value.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: bad CreationDate {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{where}: bad CreationDate {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_inventory(body: bytes | str, fmt: str) -> pd.DataFrame:
    """One row per archive: archive_id, description, creation_date (UTC), size (int64), sha256_tree_hash (lowercase hex).

    ``fmt`` is the job's output format, ``JSON`` or ``CSV`` (any case); a body that is plainly the other
    format (an object, or the CSV header) is read as what it is. A null or missing-in-CSV
    description becomes ``""``. The JSON ``VaultARN`` and ``InventoryDate`` go to ``df.attrs``.
    Raises ValueError, naming the row, on a missing column, a bad size, creation date or
    tree hash, or a duplicated archive id.
    """
    kind = str(fmt).strip().upper()
    if kind not in ("JSON", "CSV"):
        raise ValueError(f"inventory format must be JSON or CSV, got {fmt!r}")
    text = _text(body)
    attrs: dict[str, Any] = {}
    # The content decides, not the format asked for: Glacier (or a proxy, or an old job) may answer in the other one.
    # A CSV inventory starts with its ArchiveId header; a JSON one with an object.
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        kind = "JSON"
    elif stripped.startswith(("ArchiveId", '"ArchiveId"')):
        kind = "CSV"
    rows = _rows_from_json(text, attrs) if kind == "JSON" else _rows_from_csv(text)

    ids: list[str] = []
    descriptions: list[str] = []
    dates: list[pd.Timestamp] = []
    sizes: list[int] = []
    hashes: list[str] = []
    seen: set[str] = set()
    for where, item in rows:
        archive_id = item["ArchiveId"]
        if not isinstance(archive_id, str) or not archive_id.strip():
            raise ValueError(f"{where}: empty or non-string ArchiveId {archive_id!r}")
        archive_id = archive_id.strip()
        if archive_id in seen:
            raise ValueError(f"{where}: ArchiveId {archive_id} listed twice")
        seen.add(archive_id)
        description = item["ArchiveDescription"]
        if description is None:
            description = ""
        if not isinstance(description, str):
            raise ValueError(f"{where}: ArchiveDescription {description!r} is not a string")
        ids.append(archive_id)
        descriptions.append(description)
        dates.append(_timestamp(item["CreationDate"], where))
        sizes.append(_size(item["Size"], where))
        hashes.append(_tree_hash(item["SHA256TreeHash"], where))

    df = pd.DataFrame(
        {
            "archive_id": pd.Series(ids, dtype="str"),
            "description": pd.Series(descriptions, dtype="str"),
            "creation_date": pd.Series(dates, dtype="datetime64[ns, UTC]"),
            "size": pd.Series(sizes, dtype="int64"),
            "sha256_tree_hash": pd.Series(hashes, dtype="str"),
        },
        columns=COLUMNS,
    )
    df.attrs.update(attrs)
    return df


def inventory_summary(df: pd.DataFrame) -> dict:
    """``{"archives": n, "bytes": total, "oldest": iso or None, "newest": iso or None}``."""
    n = int(len(df))
    if not n:
        return {"archives": 0, "bytes": 0, "oldest": None, "newest": None}
    dates = df["creation_date"]
    return {
        "archives": n,
        "bytes": int(df["size"].sum()),
        "oldest": dates.min().isoformat(),
        "newest": dates.max().isoformat(),
    }
