"""Many small local files read and hashed in worker processes, so that the verifier's own process keeps its GIL.

On 10,000 files of 1-64 KiB the verify step was bound by its one GIL: the fetch threads' opens,
reads and hashes (about 10 system calls and 2 digests per file, each giving the GIL up and
waiting for it back) against the step's own catalog writes. Worker processes do the same
reading and hashing beside it, each with its own GIL, and send back the bytes and digests.

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
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

from glacier_pipelines.core import checksums
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.sources import SourceError, SourcePolicy, open_source


class Fetched(NamedTuple):
    """A file read whole and hashed: canonical algorithm -> hex for the request's algorithm and SHA-256."""

    digests: dict[str, str]
    body: bytes


def fetch_files(policy: SourcePolicy, items: list[tuple[str, str, int]]) -> list[Fetched | None]:
    """Read and hash each ``(file URL, algorithm, largest size to hold)``; None where the verifier must fetch it itself."""
    return [_fetch_one(policy, url, algorithm, hold_up_to) for url, algorithm, hold_up_to in items]


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
    return Fetched({name: digest.hexdigest(name) for name in names}, body)


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

    def submit(self, policy: SourcePolicy, items: list[tuple[str, str, int]]) -> Future:
        """Send one task to the next child in turn; the future holds ``fetch_files``' answer."""
        future: Future = Future()
        i = self.sent % len(self.children)
        self.sent += 1
        task = pickle.dumps((policy, items), protocol=pickle.HIGHEST_PROTOCOL)
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
        policy, items = pickle.loads(tasks.read(_LENGTH.unpack(header)[0]))
        answer = pickle.dumps(fetch_files(policy, items), protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(_LENGTH.pack(len(answer)) + answer)
        answers.flush()


if __name__ == "__main__":
    # Run as a script this module is __main__; its answers must name the importable module's classes.
    from glacier_pipelines.core import local_fetch

    local_fetch._serve()
