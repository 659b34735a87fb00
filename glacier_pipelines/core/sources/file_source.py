"""file:// sources: a URL resolved to a real path that must stay inside the configured roots, and opened so that
nothing swapped in after that check (a symlink, a fifo) is read instead."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from glacier_pipelines.core.sources.errors import SourceRefused, os_error, show
from glacier_pipelines.core.sources.stream import SourceStream

if TYPE_CHECKING:
    from glacier_pipelines.core.sources.policy import SourcePolicy


def resolve_file(url: str, policy: SourcePolicy) -> str:
    """Return the real path of a file:// URL, refusing anything that escapes the roots."""
    if not policy.file_roots:
        raise SourceRefused(url, "file:// sources are disabled (no file roots configured)")
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceRefused(url, "file URLs must be file:///absolute/path (no remote host)")
    if parts.query or parts.fragment:
        raise SourceRefused(url, "file URL has a query or fragment; encode '?' and '#' as %3F and %23")
    path = unquote(parts.path, errors="surrogateescape")
    if not path.startswith("/") or "\x00" in path:
        raise SourceRefused(url, "file URL path must be absolute and must not contain NUL")
    real = real_path(path)
    roots = list(policy.real_roots)
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        raise SourceRefused(url, show(f"{path} resolves to {real}, outside the allowed roots {roots}"))
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise os_error(url, exc) from exc
    if not stat.S_ISREG(mode):
        raise SourceRefused(url, f"not a regular file ({_file_kind(mode)})")
    return real


def real_path(path: str) -> str:
    """``os.path.realpath``, resolved by the kernel in one step where Linux allows.

    An O_PATH descriptor resolves every symlink without opening the file itself (no device or
    fifo driver is touched) and /proc names where it led. ``os.path.realpath`` walks the path
    in Python, an lstat per component: with thousands of small files it led the profile.
    """
    o_path = getattr(os, "O_PATH", 0)
    if o_path:
        try:
            fd = os.open(path, o_path | os.O_CLOEXEC)
        except OSError:
            return os.path.realpath(path)  # missing or unreadable: the stat that follows says why
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
        finally:
            os.close(fd)
    return os.path.realpath(path)


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "directory", stat.S_ISFIFO: "fifo", stat.S_ISSOCK: "socket"}
    return next((name for test, name in kinds.items() if test(mode)), "device or special file")


def open_file(url: str, real: str) -> SourceStream:
    # O_NONBLOCK so a fifo swapped in after the check cannot hang open(); fstat re-checks the type.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceRefused(url, f"not a regular file ({_file_kind(st.st_mode)})")
        opened = _opened_path(fd)
        if opened is not None and opened != real:
            # O_NOFOLLOW guards only the last component: a folder swapped for a symlink after the
            # root check would lead elsewhere. The kernel says which file was really opened.
            raise SourceRefused(url, show(f"{real} changed while it was opened (it now leads to {opened}): refused"))
        f = open(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return SourceStream(url, st.st_size, lambda n: iter(lambda: f.read(n), b""), f.close)


def _opened_path(fd: int) -> str | None:
    """The path of an open file as the kernel resolved it (Linux /proc), or None where unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
