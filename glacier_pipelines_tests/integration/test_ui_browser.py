"""The Dagster UI in a real browser: Debian's headless Chromium, driven by Playwright, against ``dagster dev`` on loopback.

``dagster dev`` runs the webserver and the daemon over a temporary DAGSTER_HOME; S3 is a moto server, so the runs
launched from the UI (separate processes) archive for real. Three tenants have pending requests. By clicks only, the
test materializes the archive group for tenant ``lab`` (one run), then launches a backfill of ``museum`` and
``observatory`` (the daemon runs it), waits for the runs through GraphQL, and reads the check results, partitions and
metadata the UI shows. Every request ends SUCCESS in the catalog. With GLACIER_UPDATE_SCREENSHOTS=1 the screenshots
replace those in docs/screenshots/ (the README shows them). Without Chromium or Playwright the test skips saying so,
and fails when GLACIER_REQUIRE_BROWSER=1 (set by .ci/run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import urllib.request
from types import SimpleNamespace
from pathlib import Path

import boto3
import dagster as dg
import pytest

from glacier_pipelines.emulator import free_port, moto_server
from glacier_pipelines_tests.integration.conftest import Processes, archive_env, catalog_report, persist_requests, write_requests

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]  # its own waits bound it first

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUCKET = "archive-test"
TENANTS = {"lab": 2, "museum": 2, "observatory": 1}  # pending requests per tenant
RUN_SECONDS = 300  # a run or a backfill, launched from the UI, on a loaded 2-core machine
LOADED = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
RUNS = """query Runs($filter: RunsFilter) { runsOrError(filter: $filter) {
  ... on Runs { results { runId status tags { key value } } } ... on PythonError { message } } }"""
BACKFILL = """query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } ... on PythonError { message } ... on BackfillNotFoundError { message } } }"""


def _require_browser():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is missing (pip install -e '.[test]'; never `playwright install`)")
    if missing:
        message = "THE DAGSTER UI WAS NOT TESTED IN A BROWSER: " + "; ".join(missing)
        if os.environ.get("GLACIER_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (GLACIER_REQUIRE_BROWSER=1)")
        pytest.skip(message)


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
    assert "errors" not in answer, answer
    return answer["data"]


def _loaded(base: str) -> bool:
    """Ready means the code location is LOADED (the server answers earlier than that)."""
    try:
        entries = _graphql(base, LOADED)["workspaceOrError"]["locationEntries"]
    except (OSError, KeyError, TypeError, ValueError, AssertionError):
        return False
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _runs(base: str, **tags: str) -> list[dict]:
    results = _graphql(base, RUNS, {"filter": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}})["runsOrError"]["results"]
    return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in results]


def _settled(runs: list[dict]) -> bool:
    return bool(runs) and all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs)


@pytest.fixture
def dagster_dev(tmp_path, monkeypatch):
    """``dagster dev`` (webserver and daemon) over a fresh DAGSTER_HOME, with pending requests for TENANTS.

    Yields its base URL, the environment of its processes and ``wait_for`` (which fails as soon as dagster dev exits).
    """
    _require_browser()
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    processes = Processes(tmp_path)
    with moto_server() as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        ).create_bucket(Bucket=BUCKET)
        env = archive_env(tmp_path, endpoint, BUCKET, DAGSTER_HOME=str(home))
        persist_requests(env, write_requests(tmp_path / "sources", TENANTS, prefix="ui-"), monkeypatch)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:  # the intake sensor adds tenants as partitions; it is off here
            instance.add_dynamic_partitions("tenants", list(TENANTS))
        port = free_port()
        # Its own process group with default signal handling, stopped with SIGINT: otherwise its code server outlives the test.
        processes.start(
            "dagster-dev",
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            env,
            ROOT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            processes.wait_for("the code location to load", lambda: _loaded(base), 180, interval=0.5)
            yield SimpleNamespace(base=base, env=env, wait_for=processes.wait_for)
        finally:
            processes.stop(signal.SIGINT)


def test_the_ui_materializes_a_tenant_backfills_two_and_shows_checks_partitions_and_metadata(dagster_dev, tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    base = dagster_dev.base
    expect.set_options(timeout=30_000)  # a loaded 2-core machine renders slowly
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_init_script("window.localStorage.setItem('communityNux', '1')")  # the community pop-up blocks clicks
            context.set_default_timeout(30_000)
            page = context.new_page()

            def shot(name: str) -> None:
                page.wait_for_timeout(1000)  # icons and edges settle before the picture
                page.screenshot(path=str(shots / name))

            page.goto(f"{base}/asset-groups")
            for group in ("archive", "restore", "operations"):
                expect(page.locator(f'foreignObject [data-tooltip="{group}"]').first).to_be_visible()

            group_page = f"{base}/locations/glacier_pipelines/asset-groups/archive"

            def open_launch_dialog(*tenants: str):
                """Materialize all… on the archive group (its four assets), then tick the tenants' partitions."""
                page.goto(group_page)
                for asset in ("ingest_batch", "verified_files", "glacier_objects", "glacier_packages"):
                    expect(page.locator(f'foreignObject [data-tooltip="{asset}"]').first).to_be_visible()
                page.get_by_role("button", name="Materialize all").click()
                dialog = page.get_by_role("dialog")
                expect(dialog.get_by_text("Launch runs to materialize 4 assets")).to_be_visible()
                dialog.get_by_text("Select a partition or create one").click()
                for tenant in tenants:
                    page.locator("[class*=popover]").get_by_text(tenant, exact=True).first.click()
                dialog.get_by_text("Launch runs to materialize 4 assets").click()  # close the partition list, keep the dialog
                expect(page.get_by_placeholder("Filter partitions")).to_be_hidden()
                expect(dialog.get_by_text(f"{len(tenants)} partition")).to_be_visible()
                return dialog

            # One tenant: a single run of the four assets and their checks.
            dialog = open_launch_dialog("lab")
            dialog.get_by_role("button", name="Launch 1 run").click()
            expect(page.get_by_text("Launched run")).to_be_visible()
            dagster_dev.wait_for(
                "tenant lab's run to finish", lambda: _settled(_runs(base, **{"dagster/partition": "lab"})), RUN_SECONDS, interval=2
            )
            assert [run["status"] for run in _runs(base, **{"dagster/partition": "lab"})] == ["SUCCESS"]

            # Two tenants: a backfill, which the daemon turns into runs.
            dialog = open_launch_dialog("museum", "observatory")
            shot("backfill-dialog.png")
            dialog.get_by_role("button", name="Launch backfill").click()
            toast = page.get_by_text(re.compile(r"Created backfill \w+"))
            expect(toast).to_be_visible()
            backfill_id = re.search(r"Created backfill (\w+)", toast.inner_text()).group(1)

            def backfill_over() -> bool:
                status = _graphql(base, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]["status"]
                return status not in ("REQUESTED", "CANCELING") and _settled(_runs(base, **{"dagster/backfill": backfill_id}))

            dagster_dev.wait_for(f"backfill {backfill_id} to finish", backfill_over, RUN_SECONDS, interval=2)
            assert _graphql(base, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]["status"] == "COMPLETED_SUCCESS"
            backfill_runs = _runs(base, **{"dagster/backfill": backfill_id})
            assert sorted((run["tags"]["dagster/partition"], run["status"]) for run in backfill_runs) == [
                ("museum", "SUCCESS"),
                ("observatory", "SUCCESS"),
            ]  # one run per tenant

            page.goto(f"{base}/runs/b/{backfill_id}?tab=runs")
            expect(page.get_by_text("Succeeded").first).to_be_visible()
            expect(page.get_by_text("Success", exact=True)).to_have_count(2)
            shot("backfill.png")

            page.goto(group_page)
            expect(page.get_by_text("1 / 1 Passed").first).to_be_visible()  # check results on the nodes
            expect(page.get_by_text("100% filled")).to_have_count(4)  # every tenant's partition of the four assets
            shot("asset-graph.png")

            page.goto(f"{base}/assets/glacier_objects?view=checks")
            expect(page.get_by_text("checksum_integrity").first).to_be_visible()
            expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
            expect(page.get_by_text("objects_checked").first).to_be_visible()
            shot("checks.png")
            page.get_by_text("Execution history").click()
            expect(page.get_by_text("Passed", exact=True)).to_have_count(3)  # one evaluation per run, each passed
            expect(page.get_by_text("Failed", exact=True)).to_have_count(0)
            shot("check-history.png")

            page.goto(f"{base}/assets/glacier_objects?view=partitions")
            expect(page.get_by_text("Materialized (3)").first).to_be_visible()
            page.get_by_text("lab", exact=True).first.click()
            expect(page.get_by_text("storage_class").first).to_be_visible()  # the tenant's latest materialization and its metadata
            expect(page.get_by_text("DEEP_ARCHIVE").first).to_be_visible()
            shot("partitions.png")

            page.goto(f"{base}/assets/glacier_objects?view=events&partition=lab")
            expect(page.get_by_text("Partition lab materialized in run").first).to_be_visible()
            table = page.locator("table", has=page.get_by_text("request", exact=True)).last  # the objects table, rendered
            expect(table).to_be_visible()
            expect(table.locator("td", has_text="ui-lab-0").first).to_be_visible()
            expect(table.locator("td", has_text=f"s3://{BUCKET}/archive/lab/").first).to_be_visible()
            shot("metadata.png")

            page.goto(f"{base}/assets/ingest_batch?view=events&partition=lab")  # request ids with their batch and run: where `audit` starts
            batch_table = page.locator("table", has=page.get_by_text("batch", exact=True)).last
            expect(batch_table.locator("td", has_text="ui-lab-1").first).to_be_visible()
            shot("requests.png")
        finally:
            browser.close()

    # What the clicks did: every request of the three tenants answered SUCCESS in the catalog.
    report = catalog_report(dagster_dev.env, monkeypatch)
    assert {rid: r["status"] for rid, r in report.items()} == {
        f"ui-{tenant}-{i}": "SUCCESS" for tenant, count in TENANTS.items() for i in range(count)
    }
    for shot in shots.iterdir():
        assert shot.stat().st_size > 10_000, shot  # a real picture, not an empty page
    if os.environ.get("GLACIER_UPDATE_SCREENSHOTS") == "1":  # refresh the README's pictures; a plain run leaves the tree clean
        SHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copyfile(shot, SHOTS / shot.name)
