"""Static data that the test process parses once instead of once per client or per database.

The product is unchanged: these patches live in the test process only (``conftest.py`` applies them),
and every subprocess a test starts (CLI, daemon, code server, workers) parses as it always does.
"""

from __future__ import annotations

from typing import Any


def read_once() -> None:
    """Apply both patches (idempotent)."""
    _parse_botocore_data_once()
    _read_migration_scripts_once()


def _parse_botocore_data_once() -> None:
    """Parse each of botocore's JSON data files once per test process instead of once per client.

    The product builds every client from a fresh ``boto3.session.Session`` (sessions are not thread-safe),
    and each new session re-reads and re-parses the S3 model, endpoints and rules: about 0.2 CPU-s per
    client, half of the suite's CPU time. The files cannot change during a run, and botocore already shares
    one parsed copy between the clients of a session, so sharing it between sessions changes nothing that
    a test observes. Subprocesses (CLI, daemon, code server) are not affected.
    """
    from botocore.loaders import JSONFileLoader

    if getattr(JSONFileLoader.load_file, "_glacier_cached", False):
        return
    parse = JSONFileLoader.load_file
    parsed: dict[str, Any] = {}

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        if file_path not in parsed:
            parsed[file_path] = parse(self, file_path)
        return parsed[file_path]

    load_file._glacier_cached = True  # type: ignore[attr-defined]
    JSONFileLoader.load_file = load_file  # type: ignore[method-assign]

    from botocore.loaders import Loader

    list_services = Loader.list_available_services
    listed: dict[tuple[Any, ...], list[str]] = {}

    def list_available_services(self: Loader, type_name: str) -> list[str]:  # a directory walk per new session otherwise
        key = (tuple(self.search_paths), type_name)
        if key not in listed:
            listed[key] = list_services(self, type_name)
        return list(listed[key])

    Loader.list_available_services = list_available_services  # type: ignore[method-assign]


def _read_migration_scripts_once() -> None:
    """Read each alembic folder's revision files once per test process instead of once per database.

    Every temporary Dagster instance (three SQLite storages) and every new catalog stamps or upgrades its
    schema, and alembic re-executes every revision file each time to rebuild its revision graph. The
    graph of a folder cannot change during a run; each database is still created and migrated anew.
    """
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory.from_config, "_glacier_cached", False):
        return
    build = ScriptDirectory.from_config
    graphs: dict[tuple[Any, ...], Any] = {}

    def from_config(cls: type[ScriptDirectory], config: Any) -> ScriptDirectory:
        script = build.__func__(cls, config)  # type: ignore[attr-defined]
        key = (
            cls,
            str(script.dir),
            tuple(str(p) for p in script._version_locations),
            script.recursive_version_locations,
            script.sourceless,
        )
        graphs.setdefault(key, script.revision_map)
        script.revision_map = graphs[key]
        return script

    from_config._glacier_cached = True  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[assignment,method-assign]
