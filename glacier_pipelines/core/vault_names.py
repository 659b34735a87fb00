"""Destination keys for S3 Glacier vault archives, named from their ArchiveDescription.

A vault archive has no name, only an id and a free-text description (Glacier "Upload Archive
(POST archive)": up to 1,024 printable ASCII characters that Glacier "does not interpret in any
way"). Desktop clients stored the original path in it; this module recovers a safe relative
name per archive, so a vault can be copied to ``<prefix>/<vault>/<name>`` in S3.

Description formats recognised (the same set, and the same ``00error/`` and ``00undefined/``
fallbacks, as AWS's "Data transfer from Amazon S3 Glacier vaults to Amazon S3" solution,
``aws-solutions/data-transfer-from-amazon-s3-glacier-vaults-to-amazon-s3``,
``source/solution/infrastructure/glue_helper/scripts/archive_naming.py`` and its tests):

* FastGlacier v2/v3/v4: ``<m><v>4</v><p>BASE64</p><lm>20190121T085242Z</lm></m>`` where ``p``
  is the base64 of the UTF-8 path, ``v`` the metadata version and ``lm`` the last-modified
  time (``YYYYMMDDTHHMMSSZ``); whitespace may surround the elements and the text inside them.
* FastGlacier v1: ``<ArchiveMetadata><Path>BASE64</Path>...</ArchiveMetadata>``.
  Either form may be wrapped in a pair of double (or single) quotes.
* JSON objects with a ``"Path"`` (or ``"path"``) string, as written by CloudBerry, e.g.
  ``{"Path":"dir/file.dpx","UTCDateModified":"20100310T110623Z"}``.
* Anything else is taken as the name itself.

Departures from that solution, on purpose: a base64 path that is not valid UTF-8 is an error
(the solution silently drops the bad bytes); every name goes through :func:`safe_relative`,
so ``..`` segments, control characters and absolute paths cannot escape the destination
prefix; duplicates get the creation time *before* the extension (``a.20200101T000000Z-1.jpg``)
rather than after it, so the object keeps its type.
"""

from __future__ import annotations

import binascii
import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

REASONS = ("fastglacier", "json", "raw", "override", "error", "undefined")

# FastGlacier v2/v3/v4 and v1, matched on the whole (trimmed, unquoted) description. The path
# element is searched inside the envelope; its text is base64 (whitespace is tolerated).
_FG_ENVELOPES = (
    (re.compile(r"<m>(.*)</m>", re.S), re.compile(r"<p>([^<]*)</p>")),
    (re.compile(r"<ArchiveMetadata>(.*)</ArchiveMetadata>", re.S), re.compile(r"<Path>([^<]*)</Path>")),
)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_VAULT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,255}")
_ARCHIVE_ID = re.compile(r"[A-Za-z0-9_\-=+.]{1,1024}")
_OVERRIDE_HEADERS = {"archiveid", "archive id", "archive_id", "glacierarchiveid", "id"}
S3_KEY_MAX_BYTES = 1024


@dataclass(frozen=True)
class NamedArchive:
    archive_id: str
    name: str
    reason: str  # one of REASONS


class _Unparsable(ValueError):
    pass


def _error(archive_id: str) -> str:
    return f"00error/{archive_id}"


def _undefined(archive_id: str) -> str:
    return f"00undefined/{archive_id}"


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _fastglacier_path(text: str) -> str | None:
    """The decoded path if ``text`` is a FastGlacier envelope, None if it is not one; raises if broken."""
    for envelope, element in _FG_ENVELOPES:
        outer = envelope.fullmatch(text)
        if not outer:
            continue
        inner = element.search(outer.group(1))
        if not inner:
            raise _Unparsable("FastGlacier description without a path element")
        encoded = "".join(inner.group(1).split())
        if not _BASE64.fullmatch(encoded):
            raise _Unparsable("FastGlacier path is not padded base64")
        raw = binascii.a2b_base64(encoded, strict_mode=True)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Unparsable(f"FastGlacier path is not UTF-8: {exc}") from exc
    return None


def _json_path(text: str) -> str | None:
    """The path of a JSON object description, None if not JSON or no path key; raises if the path is not a string."""
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    for key in ("Path", "path"):
        if key in obj:
            value = obj[key]
            if not isinstance(value, str):
                raise _Unparsable(f"JSON {key!r} is {type(value).__name__}, not a string")
            return value
    return None


def name_from_description(description: str | None, archive_id: str) -> tuple[str, str]:
    """``(name, reason)`` for one archive, from its ArchiveDescription (not yet made safe).

    reason is ``fastglacier``, ``json`` or ``raw``; ``error`` (``00error/<id>``) when a
    FastGlacier envelope or a JSON path cannot be decoded; ``undefined``
    (``00undefined/<id>``) when the description, or the path it carries, is empty.
    """
    if description is None or not str(description).strip():
        return _undefined(archive_id), "undefined"
    text = str(description).strip()
    try:
        name, reason = _fastglacier_path(_unquote(text)), "fastglacier"
        if name is None:
            name, reason = _json_path(text), "json"
        if name is None:
            name, reason = text, "raw"
    except _Unparsable:
        return _error(archive_id), "error"
    if not name.strip():
        return _undefined(archive_id), "undefined"
    return name.strip(), reason


def _bad_char(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cs: lone surrogates (cannot be UTF-8 encoded into a key).
    return unicodedata.category(ch) in ("Cc", "Cs")


def safe_relative(name: str) -> str | None:
    """A clean relative key for ``name``, or None if it cannot be one.

    ``\\`` becomes ``/``; empty and ``.`` segments are dropped (so leading ``/`` and ``./``
    and doubled slashes go); a ``..`` segment, or any segment made only of dots and spaces
    (which Windows would trim to ``.`` or ``..``), refuses the whole name, as do control
    characters, lone surrogates and an empty result.
    """
    if not isinstance(name, str) or any(_bad_char(ch) for ch in name):
        return None
    segments = []
    for seg in name.replace("\\", "/").split("/"):
        if seg in ("", "."):
            continue
        if seg.strip(" .") == "":
            return None
        segments.append(seg)
    return "/".join(segments) or None


def _check_archive_id(archive_id: Any) -> str:
    if not isinstance(archive_id, str) or not _ARCHIVE_ID.fullmatch(archive_id) or not archive_id.strip("."):
        raise ValueError(f"invalid archive id {archive_id!r}")
    return archive_id


def _creation(value: Any, archive_id: str) -> datetime:
    if isinstance(value, datetime):  # includes pandas.Timestamp
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"archive {archive_id}: CreationDate {value!r} is not ISO 8601") from exc
    else:
        raise ValueError(f"archive {archive_id}: CreationDate {value!r} is not a date")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _field(row: dict, *keys: str) -> Any:
    for key in keys:
        if key in row:
            return row[key]
    raise ValueError(f"inventory row without {keys[0]}: {sorted(row)}")


def _with_suffix(name: str, stamp: str, counter: int) -> str:
    head, _, base = name.rpartition("/")
    dot = base.rfind(".")
    if dot > 0:  # a leading dot (".bashrc") is not an extension
        stem, ext = base[:dot], base[dot:]
    else:
        stem, ext = base, ""
    new = f"{stem}.{stamp}-{counter}{ext}"
    return f"{head}/{new}" if head else new


def assign_names(archives: list[dict], overrides: dict[str, str] | None = None) -> list[NamedArchive]:
    """A unique safe name per archive, in (CreationDate, ArchiveId) order.

    ``archives`` are inventory rows: ``ArchiveId``, ``ArchiveDescription``, ``CreationDate``
    (ISO 8601 string or datetime); the snake_case columns of
    :func:`glacier_pipelines.core.vault_inventory.parse_inventory` (``archive_id``,
    ``description``, ``creation_date``) are accepted too. An ``overrides`` entry for an
    archive id wins (reason ``override``). A name refused by :func:`safe_relative` becomes
    ``00error/<id>`` (reason ``error``). Of archives ending with the same name, the first
    by (CreationDate, ArchiveId) keeps it and the n-th other one becomes
    ``<stem>.<YYYYMMDDTHHMMSSZ>-<n><ext>`` (n bumped further if that name is taken).
    """
    overrides = overrides or {}
    rows: list[tuple[datetime, str, str, str]] = []
    seen: set[str] = set()
    for row in archives:
        archive_id = _check_archive_id(_field(row, "ArchiveId", "archive_id"))
        if archive_id in seen:
            raise ValueError(f"archive id {archive_id} listed twice")
        seen.add(archive_id)
        created = _creation(_field(row, "CreationDate", "creation_date"), archive_id)
        if archive_id in overrides:
            name, reason = overrides[archive_id], "override"
        else:
            description = row.get("ArchiveDescription", row.get("description"))
            name, reason = name_from_description(description, archive_id)
        safe = safe_relative(name)
        if safe is None:
            safe, reason = _error(archive_id), "error"
        rows.append((created, archive_id, safe, reason))

    rows.sort(key=lambda r: (r[0], r[1]))
    firsts: dict[str, str] = {}
    for _, archive_id, name, _ in rows:
        firsts.setdefault(name, archive_id)
    taken = set(firsts)
    duplicates: dict[str, int] = {}
    result = []
    for created, archive_id, name, reason in rows:
        if firsts[name] != archive_id:
            count = duplicates.get(name, 0) + 1
            stamp = created.strftime("%Y%m%dT%H%M%SZ")
            candidate = _with_suffix(name, stamp, count)
            while candidate in taken:
                count += 1
                candidate = _with_suffix(name, stamp, count)
            duplicates[name] = count
            taken.add(candidate)
            name = candidate
        result.append(NamedArchive(archive_id, name, reason))
    return result


def load_overrides_csv(text: str) -> dict[str, str]:
    """``archive id,name`` per line (CSV quoting allowed) -> mapping; an optional header is skipped.

    Blank lines (and all-empty rows such as the ``,`` of the AWS solution's template) are
    ignored. A row without exactly two fields, an empty or malformed id or name, or an id
    given two different names raises ValueError naming the line.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    result: dict[str, str] = {}
    first_data = True
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            fields = [f.strip() for f in row]
            if not any(fields):
                continue
            if first_data and fields and fields[0].lower() in _OVERRIDE_HEADERS:
                first_data = False
                continue
            first_data = False
            if len(fields) != 2:
                raise ValueError(f"overrides line {start}: expected 'archive id,name', got {len(fields)} fields")
            archive_id, name = fields
            if not archive_id or not _ARCHIVE_ID.fullmatch(archive_id) or not archive_id.strip("."):
                raise ValueError(f"overrides line {start}: invalid archive id {archive_id!r}")
            if not name:
                raise ValueError(f"overrides line {start}: empty name for {archive_id}")
            if result.get(archive_id, name) != name:
                raise ValueError(f"overrides line {start}: archive id {archive_id} already named {result[archive_id]!r}")
            result[archive_id] = name
    except csv.Error as exc:
        raise ValueError(f"overrides line {line}: {exc}") from exc
    return result


def destination_key(prefix: str, vault: str, name: str) -> str:
    """``<prefix>/<vault>/<name>`` with clean slashes; refuses bad vault names, unsafe names, keys > 1024 bytes."""
    if not isinstance(vault, str) or not _VAULT_NAME.fullmatch(vault) or vault in (".", ".."):
        raise ValueError(f"invalid vault name {vault!r} (1-255 of A-Z a-z 0-9 _ - .)")
    clean_prefix = safe_relative(prefix) if prefix and prefix.strip("/") else ""
    if clean_prefix is None:
        raise ValueError(f"unsafe key prefix {prefix!r}")
    clean_name = safe_relative(name)
    if clean_name is None:
        raise ValueError(f"unsafe archive name {name!r}")
    key = "/".join(part for part in (clean_prefix, vault, clean_name) if part)
    if len(key.encode("utf-8")) > S3_KEY_MAX_BYTES:
        raise ValueError(f"key longer than {S3_KEY_MAX_BYTES} bytes: {key[:80]}...")
    return key
