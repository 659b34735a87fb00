"""A test-only pause in the middle of ``glacier_objects``, installed from outside the code (no hook in flows/).

``sitecustomize_dir(folder)`` writes a ``sitecustomize.py`` there; a Python started with that folder on
PYTHONPATH (the ``glacier-pipelines`` script, a code server and the run workers it spawns) then wraps
``Catalog.store`` when ``GLACIER_TEST_PAUSE_FILE`` is set. The call after ``GLACIER_TEST_PAUSE_AFTER_STORES``
recorded objects writes its pid to that file and sleeps: the object it was about to record is already
in S3 and its staged copy already removed, the costliest place for a worker to die. Only the first
process to get there pauses (the file exists afterwards), so the run that takes over goes through.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_FILE = "GLACIER_TEST_PAUSE_FILE"
AFTER = "GLACIER_TEST_PAUSE_AFTER_STORES"


def install() -> None:
    path = os.environ.get(PAUSE_FILE)
    if not path:
        return
    from glacier_pipelines.catalog import Catalog

    original = Catalog.store
    calls = {"n": 0}
    after = int(os.environ.get(AFTER, "1"))

    def store(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return original(self, *args, **kwargs)  # someone paused already: this is the run that takes over
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            while True:  # until SIGKILL
                time.sleep(60)
        return original(self, *args, **kwargs)

    Catalog.store = store


def sitecustomize_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("from glacier_pipelines_tests.faults.pause_hook import install\ninstall()\n")
    return folder


def paused_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None
