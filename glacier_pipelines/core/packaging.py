"""Small-file packages: uncompressed POSIX (pax) tar files whose members sit at fixed offsets.

Anyone can open a package with ``tar``; this project also records each member's data offset
and length, so one member can be read with a ranged GET and checked against its SHA-256.
Packages are built deterministically (fixed mtime, owner and mode), so rebuilding one after
a crash gives the same bytes and the same checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

MANIFEST_SUFFIX = ".manifest.jsonl"


class PackagingError(Exception):
    """A member could not be packed as recorded (its staged bytes changed, or vanished)."""


@dataclass(frozen=True)
class Member:
    name: str  # path inside the tar
    path: Path | str  # the durably staged file: a local path, or an s3:// locator (core/staging.py)
    sha256: str  # what the bytes were verified to be
    request_id: str
    algorithm: str
    checksum: str


@dataclass(frozen=True)
class PackedMember:
    name: str
    offset: int  # of the member's data inside the tar
    length: int
    sha256: str
    request_id: str
    algorithm: str
    checksum: str


def member_name(directory: str, checksum: str) -> str:
    """Same layout as standalone keys below the tenant: ``<directory>/<checksum>``."""
    return f"{directory.strip('/')}/{checksum}" if directory.strip("/") else checksum


def build_tar(
    members: Iterable[Member], dest: Path | None, read: Callable[[Member], bytes] | None = None, tee: Callable[[bytes], Any] | None = None
) -> tuple[list[PackedMember], str, int]:
    """Write the package and fsync it; returns (packed members, SHA-256 of the tar, its size).

    Each member's staged bytes (read by ``read``; default: its local file) are re-hashed on the
    way in: a staged file that changed since it was verified raises PackagingError instead of
    being archived. ``tee`` receives every byte written, in order (the package's upload, fed as it is built).
    With ``dest`` None nothing is written locally: the tar exists only as what ``tee`` received.
    Either way each member's recorded offset is checked against the count of bytes really
    written before its header (PackagingError if they differ), so the offsets describe the bytes sent.
    """
    read = read or (lambda m: Path(m.path).read_bytes())
    if dest is None:
        return _write_tar(members, None, read, tee)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with open(tmp, "wb") as raw:
        result = _write_tar(members, raw, read, tee)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, dest)
    return result


def _write_tar(
    members: Iterable[Member], raw: Any, read: Callable[[Member], bytes], tee: Callable[[bytes], Any] | None
) -> tuple[list[PackedMember], str, int]:
    """build_tar's writing, to ``raw`` (a local file, or None) and ``tee``."""
    packed: list[PackedMember] = []
    out = _HashingWriter(raw, tee)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for m in members:
            try:
                data = read(m)
            except OSError as exc:
                raise PackagingError(f"{m.request_id}: staged file {m.path} unreadable: {exc}") from None
            if hashlib.sha256(data).hexdigest() != m.sha256:
                raise PackagingError(f"{m.request_id}: staged file {m.path} no longer has the verified SHA-256 {m.sha256}")
            info = _member_info(m.name, len(data))
            data_offset = _append_member(tar, out, info, data)
            packed.append(PackedMember(m.name, data_offset, len(data), m.sha256, m.request_id, m.algorithm, m.checksum))
    # Hashed as written, not read back: for a local file verify_members re-reads every member from it and the upload
    # re-reads the whole file against this digest (S3 checks it too); a streamed upload hashes what it sent against it.
    return packed, out.digest.hexdigest(), out.size


def _append_member(tar: tarfile.TarFile, out: _HashingWriter, info: tarfile.TarInfo, data: bytes) -> int:
    """Write one member (header, bytes, padding) in one write; returns where its bytes start in the tar.

    What ``TarFile.addfile`` does, less its copy loop: addfile pushes the bytes through 16 KiB reads
    and writes, and the header had to be built a second time to learn the data's offset (tarfile
    sets ``offset_data`` only when reading). Together that was a third of building a package of
    small files. ``tar.offset`` and ``tar.members`` stay as addfile leaves them, so ``close``
    writes the end-of-archive blocks where they belong.
    """
    if tar.offset != out.size:  # tarfile's count and the bytes really written disagree: no offset recorded from it is true
        raise PackagingError(f"{info.name}: the tar's offset {tar.offset} is not the {out.size} bytes written before it")
    header = member_header(info.name, len(data)) or info.tobuf(tar.format, tar.encoding, tar.errors)
    padding = -len(data) % tarfile.BLOCKSIZE
    out.write(header + data + bytes(padding))
    data_offset = tar.offset + len(header)
    tar.offset = data_offset + len(data) + padding
    tar.members.append(info)  # type: ignore[attr-defined]  # the list addfile appends to (not in typeshed)
    return data_offset


def _member_info(name: str, size: int) -> tarfile.TarInfo:
    """A member as build_tar writes it: mode 0644, owner 0, mtime 0 (the same bytes on every rebuild)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
    return info


# Every field of a member's header but the name, the size and the checksum, as this Python's tarfile writes them.
_TEMPLATE = _member_info("x", 0).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
_MAX_SIZE = 8**11  # what the 12-byte octal size field holds; larger needs a pax record


def member_header(name: str, size: int) -> bytes | None:
    """The 512-byte header ``TarInfo.tobuf`` gives one of build_tar's members, or None when it needs pax records.

    Built here because tobuf re-derives every field through its generic checks, about a fifth of
    closing a package of small files, though only the name and the size differ between members.
    A name that is not ASCII or longer than 100 characters, or a size of 8 GiB or more, takes
    tobuf's pax path. glacier_pipelines_tests/core/test_package_tar.py holds this to tobuf's bytes.
    """
    if not (name.isascii() and len(name) <= 100 and 0 <= size < _MAX_SIZE):
        return None
    header = (
        name.encode("ascii").ljust(100, b"\0") + _TEMPLATE[100:124] + b"%011o\0" % size + _TEMPLATE[136:148] + b" " * 8 + _TEMPLATE[156:]
    )
    return header[:148] + b"%06o\0" % sum(header) + header[155:]  # the checksum counts its own field as spaces


class _HashingWriter:
    """The file a tar is written to, hashing (SHA-256) and counting every byte on the way."""

    def __init__(self, raw: Any, tee: Callable[[bytes], Any] | None = None):
        self.raw, self.tee, self.digest, self.size = raw, tee, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        if self.tee is not None:
            self.tee(data)
        return self.raw.write(data) if self.raw is not None else len(data)

    def tell(self) -> int:
        return self.size


def verify_members(read_range, packed: Iterable[PackedMember]) -> list[str]:
    """Problems found re-reading each member at its recorded offset (``read_range(offset, length) -> bytes``)."""
    problems = []
    for m in packed:
        data = read_range(m.offset, m.length)
        actual = hashlib.sha256(data).hexdigest()
        if len(data) != m.length or actual != m.sha256:
            problems.append(f"{m.name}: bytes at offset {m.offset} (+{m.length}) hash to {actual}, recorded {m.sha256}")
    return problems


def file_range_reader(path: Path):
    def read(offset: int, length: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    return read


def manifest(package_id: str, tenant: str, key: str, tar_sha256: str, packed: Iterable[PackedMember]) -> bytes:
    """JSON Lines, one member per line, with the package on each line so a line stands alone."""
    lines = [
        # vars(), not asdict(): the fields are plain strings and numbers, and asdict's deep copy was most of this function
        json.dumps({"package": package_id, "tenant": tenant, "key": key, "packageSha256": tar_sha256, **vars(m)}, sort_keys=True)
        for m in packed
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_manifest(data: bytes | str) -> list[dict[str, Any]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            for field in ("package", "tenant", "key", "name", "offset", "length", "sha256", "request_id", "algorithm", "checksum"):
                if field not in row:
                    raise ValueError(f"missing {field}")
        except ValueError as exc:
            raise ValueError(f"manifest line {number}: {exc}") from None
        out.append(row)
    return out


def manifest_problems(data: bytes, key: str, package_sha256: str, members: Iterable[dict[str, Any]]) -> list[str]:
    """What a stored manifest gets wrong about its package and the catalog's members (name, offset, length, sha256)."""
    try:
        rows = parse_manifest(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"manifest unreadable: {exc}"]
    problems = []
    for row in rows:
        if row["key"] != key or row.get("packageSha256") != package_sha256:
            problems.append(
                f"manifest line for {row['name']} names package {row['key']} with SHA-256 {row.get('packageSha256')}, "
                f"recorded {key} with {package_sha256}"
            )
            break
    listed = {row["name"]: row for row in rows}
    for m in members:
        line = listed.get(m["name"])
        if line is None:
            problems.append(f"{m['name']}: not in the manifest")
        elif (line["offset"], line["length"], line["sha256"]) != (m["offset"], m["length"], m["sha256"]):
            problems.append(
                f"{m['name']}: manifest says offset {line['offset']} (+{line['length']}) SHA-256 {line['sha256']}, "
                f"recorded {m['offset']} (+{m['length']}) {m['sha256']}"
            )
    return problems


def member_url(bucket: str, key: str, name: str) -> str:
    return f"s3://{bucket}/{key}?member={quote(name, safe='/')}"


def parse_member_url(url: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key[?member=name]`` -> (bucket, key, member or None)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3:// URL: {url!r}")
    member = parse_qs(parts.query).get("member", [None])[0]
    return parts.netloc, unquote(parts.path.lstrip("/")), member
