"""Many small local files read and hashed in worker processes, so that the verifier's own process keeps its GIL.

On 10,000 files of 1-64 KiB the verify step was bound by its one GIL: the fetch threads' opens,
reads and hashes (about 10 system calls and 2 digests per file, each giving the GIL up and
waiting for it back) against the step's own catalog writes. Worker processes do the same
reading and hashing beside it, each with its own GIL, and append the bytes to a segment of
their own (core/segments.py), sending back only the digests and where the bytes are: the
verifier syncs those segments with its group, before recording it.

Only the plain success is done here: a file over the size to hold, a source error, anything
unexpected comes back as None, and the verifier fetches that file again in-process, where
retries, error kinds and messages are those of every other fetch.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import uuid
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

from glacier_pipelines.core import checksums, segments
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.sources import SourceError, SourcePolicy, open_source


class Fetched(NamedTuple):
    """A file read whole and hashed: canonical algorithm -> hex for the request's algorithm and SHA-256.

    Its bytes come back in ``body``, or, when the task named a segment, were appended to it:
    ``body`` is then None and ``locator`` names them there (not durable until the verifier syncs the segment).
    """

    digests: dict[str, str]
    body: bytes | None
    locator: str | None = None
    size: int = 0


def fetch_files(policy: SourcePolicy, items: list[tuple[str, str, int]], segment: str | None = None) -> list[Fetched | None]:
    """Read and hash each ``(file URL, algorithm, largest size to hold)``; None where the verifier must fetch it itself.

    With ``segment``, the bytes read are appended to that file instead of sent back: on 10,000 small files, sending
    them through the pipe and writing them from the verifier's process was a third of the verify step's critical path.
    """
    fetched = [_fetch_one(policy, url, algorithm, hold_up_to) for url, algorithm, hold_up_to in items]
    return fetched if segment is None else _append(segment, fetched)


def _append(segment: str, fetched: list[Fetched | None]) -> list[Fetched | None]:
    """Append the task's bodies to ``segment`` with one write; if it fails, every file goes back to the verifier."""
    bodies = [f.body for f in fetched if f is not None and f.body is not None]
    if not bodies:
        return fetched
    try:
        Path(segment).parent.mkdir(parents=True, exist_ok=True)
        # Only this process appends to this segment (FetchProcesses gives each its own), so its size is where these start.
        fd = os.open(segment, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            offset = os.fstat(fd).st_size
            view = memoryview(b"".join(bodies))
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError:
        return [None] * len(fetched)  # fetched again in-process, which stages them itself or says why it cannot
    answers: list[Fetched | None] = []
    for f in fetched:
        if f is None or f.body is None:
            answers.append(f)
            continue
        answers.append(Fetched(f.digests, None, segments.member_locator(segment, offset, len(f.body)), len(f.body)))
        offset += len(f.body)
    return answers


def _fetch_one(policy: SourcePolicy, url: str, algorithm: str, hold_up_to: int) -> Fetched | None:
    try:
        with open_source(url, policy) as src:
            if src.size is None or src.size > hold_up_to:
                return None  # not one to hold in memory: the verifier streams it
            digest = checksums.MultiDigest([algorithm, checksums.S3_ALGORITHM])
            pieces = []
            for chunk in src.chunks(MiB):
                digest.update(chunk)
                pieces.append(chunk)
    except (SourceError, OSError, ValueError):
        return None  # fetched again in-process, which says why
    body = b"".join(pieces)  # never more than src.size: SourceStream refuses a body that grew while it was read
    names = {checksums.normalize_algorithm(algorithm), checksums.S3_ALGORITHM}
    return Fetched({name: digest.hexdigest(name) for name in names}, body, size=len(body))


def worker_count(setting: int | None) -> int:
    """How many worker processes to start: ``setting`` (0 turns them off); by default 2, or none on a single core,
    where they only add the pickling to the same work (measured: slower than the fetch threads)."""
    if setting is not None:
        return max(0, setting)
    return 2 if (os.cpu_count() or 1) >= 2 else 0


class FetchProcesses:
    """A few ``python -m glacier_pipelines.core.local_fetch`` children, each answering ``fetch_files`` tasks in order.

    Not multiprocessing's pools: their "spawn" start runs the parent's main script again in every
    child (a script without the ``if __name__ == "__main__"`` guard would redo its work there), and
    "fork" copies a process whose other threads (Dagster's, boto3's) may hold a lock. Tasks and
    answers are pickled over each child's stdin and stdout: pipes between this process and its
    own children. A child that dies fails its pending tasks, which the verifier then fetches itself.
    """

    def __init__(self, workers: int):
        package_parent = str(Path(__file__).resolve().parents[2])  # importable in the child even when not installed
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
        self.lock = threading.Lock()
        self.children = []
        self.pending: list[deque[Future]] = []
        try:
            for _ in range(workers):
                child = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
                self.children.append(child)
                self.pending.append(deque())
        except OSError:
            for child in self.children:  # the ones that did start
                child.kill()
                child.wait()
            raise
        self.readers = [threading.Thread(target=self._answers, args=(i,), name=f"fetch-process-{i}", daemon=True) for i in range(workers)]
        for reader in self.readers:
            reader.start()
        self.sent = 0
        self.segments: dict[int, str] = {}  # child -> the segment its tasks append to, until ``new_segments``

    def submit(self, policy: SourcePolicy, items: list[tuple[str, str, int]], segment_folder: Path | None = None) -> Future:
        """Send one task to the next child in turn; the future holds ``fetch_files``' answer.

        With ``segment_folder``, the child appends the bytes to a segment of its own there instead of sending them.
        """
        future: Future = Future()
        i = self.sent % len(self.children)
        self.sent += 1
        segment = None
        if segment_folder is not None:
            segment = self.segments.setdefault(i, str(segment_folder / f"{uuid.uuid4().hex}{segments.SUFFIX}"))
        task = pickle.dumps((policy, items, segment), protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.pending[i].append(future)
        try:
            stdin = self.children[i].stdin
            assert stdin is not None
            stdin.write(_LENGTH.pack(len(task)) + task)
            stdin.flush()
        except (OSError, ValueError) as exc:  # the child is gone: its reader fails what it still owed
            self._fail(i, exc)
        return future

    def new_segments(self) -> None:
        """Later tasks append to new segments: a segment leaves once none of its members waits, so they are kept small."""
        self.segments.clear()

    def _answers(self, i: int) -> None:
        stdout = self.children[i].stdout
        assert stdout is not None
        try:
            while len(header := stdout.read(_LENGTH.size)) == _LENGTH.size:
                answer = pickle.loads(stdout.read(_LENGTH.unpack(header)[0]))
                with self.lock:
                    future = self.pending[i].popleft()
                future.set_result(answer)
        except Exception as exc:  # noqa: BLE001  (a torn answer: the child is not trusted with more)
            self._fail(i, exc)
        self._fail(i, RuntimeError(f"fetch process {self.children[i].pid} ended"))

    def _fail(self, i: int, exc: BaseException) -> None:
        with self.lock:
            owed = list(self.pending[i])
            self.pending[i].clear()
        for future in owed:
            if not future.done():
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Close the children's input (each ends once its current task is answered) and wait for them."""
        for child in self.children:
            try:
                if child.stdin is not None:
                    child.stdin.close()
            except OSError:
                pass
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for reader in self.readers:
            reader.join(timeout=5)
        for child in self.children:
            if child.stdout is not None:
                child.stdout.close()


_LENGTH = struct.Struct("!Q")


def _serve() -> None:
    """A child's loop: tasks from stdin, answers to stdout, until the parent closes stdin."""
    tasks, answers = sys.stdin.buffer, sys.stdout.buffer
    while len(header := tasks.read(_LENGTH.size)) == _LENGTH.size:
        policy, items, segment = pickle.loads(tasks.read(_LENGTH.unpack(header)[0]))
        answer = pickle.dumps(fetch_files(policy, items, segment), protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(_LENGTH.pack(len(answer)) + answer)
        answers.flush()


if __name__ == "__main__":
    # Run as a script this module is __main__; its answers must name the importable module's classes.
    from glacier_pipelines.core import local_fetch

    local_fetch._serve()
