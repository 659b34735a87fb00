"""The code location loads, and its asset graph matches the snapshot: lineage changes must be deliberate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")
ROOT = Path(__file__).resolve().parents[2]


def _snapshot() -> dict:
    from glacier_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "group": node.group_name,
            "partitions": getattr(node.partitions_def, "name", None),
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "checks": sorted(c.name for c in node.check_keys),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "resources": sorted(defs.resources),
    }


def test_asset_graph_matches_snapshot():
    current = _snapshot()
    if os.environ.get("GLACIER_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), "asset graph changed: review, then rerun with GLACIER_UPDATE_SNAPSHOT=1"


def test_integrity_checks_are_blocking_and_guard_the_right_assets():
    from glacier_pipelines.definitions import defs

    specs = {s.name: s for a in defs.resolve_asset_graph().assets_defs for s in a.check_specs}
    assert {name: s.asset_key.to_user_string() for name, s in specs.items()} == {
        "checksum_integrity": "glacier_objects",
        "restored_checksum_integrity": "restored_files",
        "package_integrity": "glacier_packages",
        "catalog_objects_present": "bucket_reconciliation",
        "transfer_integrity": "archive_transfers",
    }
    # The reconciliation's check alerts without failing its run: nothing downstream waits on it.
    assert all(s.blocking == (name != "catalog_objects_present") for name, s in specs.items())


@pytest.mark.slow
def test_dagster_definitions_validate_passes(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), GLACIER_HOME=str(tmp_path / "home"))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "glacier_pipelines.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success" in (proc.stdout + proc.stderr).lower()


def test_workspace_yaml_loads_the_definitions_module():
    text = (ROOT / "workspace.yaml").read_text()
    assert "glacier_pipelines.definitions" in text
