"""The Dagster UI in a real browser: Debian's headless Chromium, driven by Playwright, against dagster-webserver on loopback.

One archive run is materialized for tenant ``lab`` in a temporary DAGSTER_HOME first, so the UI has a
partition, check results and metadata to show. With GLACIER_UPDATE_SCREENSHOTS=1 the screenshots
replace those in docs/screenshots/ (the README shows them). Without Chromium or Playwright the test skips saying so, and fails when
GLACIER_REQUIRE_BROWSER=1 (set by .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from glacier_pipelines.emulator import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
LOADED = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}).encode()


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


def _wait_loaded(base: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Ready means the code location is LOADED (the server answers earlier than that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(f"{base}/graphql", data=LOADED, headers={"Content-Type": "application/json"})
            entries = json.loads(urllib.request.urlopen(request, timeout=5).read())["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the code location did not load within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def webserver(archive, tmp_path, monkeypatch):
    """dagster-webserver over a DAGSTER_HOME holding one archive run of tenant lab; yields its base URL."""
    _require_browser()
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    files = {"scan-0001.tif": b"first page" * 300, "scan-0002.tif": b"second page" * 500}
    archive.submit(*[archive.request("lab", archive.file(name, data), data, requestId=f"ui-{i}", owner="alice", session="s-2026")
                     for i, (name, data) in enumerate(files.items())])
    with dg.DagsterInstance.get() as instance:
        assert archive.run("lab", instance).success
    port = free_port()
    log = tmp_path / "webserver.log"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with open(log, "w") as out:
        # Its own process group with default signal handling, stopped with SIGINT: otherwise its code server outlives the test.
        proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1",
                                 "-p", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_loaded(base, proc, log)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_ui_shows_the_pipeline_its_checks_a_tenant_partition_and_metadata_tables(webserver, tmp_path):
    from playwright.sync_api import expect, sync_playwright

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

            page.goto(f"{webserver}/asset-groups")
            for group in ("archive", "restore", "operations"):
                expect(page.locator(f'foreignObject [data-tooltip="{group}"]').first).to_be_visible()

            page.goto(f"{webserver}/locations/glacier_pipelines/asset-groups/archive")
            for asset in ("ingest_batch", "verified_files", "glacier_objects", "glacier_packages"):
                expect(page.locator(f'foreignObject [data-tooltip="{asset}"]').first).to_be_visible()
            expect(page.get_by_text("1 / 1 Passed").first).to_be_visible()  # check results on the nodes
            page.wait_for_timeout(500)  # let the edges settle before the picture
            page.screenshot(path=str(shots / "asset-graph.png"))

            page.goto(f"{webserver}/assets/glacier_objects?view=checks")
            expect(page.get_by_text("checksum_integrity").first).to_be_visible()
            expect(page.get_by_text("Passed").first).to_be_visible()
            expect(page.get_by_text("objects_checked").first).to_be_visible()
            page.screenshot(path=str(shots / "checks.png"))

            page.goto(f"{webserver}/assets/glacier_objects?view=partitions")
            expect(page.get_by_text("Materialized (1)").first).to_be_visible()
            page.get_by_text("lab", exact=True).first.click()
            expect(page.get_by_text("batch_id").first).to_be_visible()  # the tenant's latest materialization and its metadata
            page.screenshot(path=str(shots / "partitions.png"))

            page.goto(f"{webserver}/assets/glacier_objects?view=events")
            expect(page.get_by_text("Partition lab materialized in run").first).to_be_visible()
            table = page.locator("table", has=page.get_by_text("request", exact=True)).last  # the objects table, rendered
            expect(table).to_be_visible()
            expect(table.locator("td", has_text="ui-0").first).to_be_visible()
            expect(table.locator("td", has_text="s3://archive-test/archive/lab/").first).to_be_visible()
            page.screenshot(path=str(shots / "metadata.png"))

            page.goto(f"{webserver}/assets/ingest_batch?view=events")  # request ids with their batch and run: where `audit` starts
            batch_table = page.locator("table", has=page.get_by_text("batch", exact=True)).last
            expect(batch_table.locator("td", has_text="ui-1").first).to_be_visible()
            page.screenshot(path=str(shots / "requests.png"))
        finally:
            browser.close()
    for shot in shots.iterdir():
        assert shot.stat().st_size > 10_000, shot  # a real picture, not an empty page
    if os.environ.get("GLACIER_UPDATE_SCREENSHOTS") == "1":  # refresh the README's pictures; a plain run leaves the tree clean
        SHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copyfile(shot, SHOTS / shot.name)
