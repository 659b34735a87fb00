"""The README's promises that can drift: the env-var table (in docs/configuration.md), the two quick-start
commands, CI's command, and the headings other files cite by name. Links are checked in test_docs_links.py."""

from __future__ import annotations

import re
from pathlib import Path

from glacier_pipelines.settings import DOC_TARGET, ENV_VARS, VARIABLES, GlacierSettings, as_text, markdown_table, with_table
from glacier_pipelines_tests.test_docs_links import anchors

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / DOC_TARGET).read_text()


def _configuration_section() -> str:
    """The generated table's page (the README only points there)."""
    return CONFIGURATION.split("# Configuration\n", 1)[1].split("\n## ", 1)[0]


def test_readme_lists_every_env_var():
    """The table names exactly the model's variables, each with the model's default."""
    table = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `((?:GLACIER|DAGSTER)_[A-Z0-9_]+)` \| ([^|]+) \|", _configuration_section(), re.M)
    }
    assert set(table) == set(VARIABLES) == set(ENV_VARS)
    for name, field in VARIABLES.items():
        default = as_text(GlacierSettings.model_fields[field].default)
        assert table[name].strip() == (f"`{default}`" if default else "unset"), name
        assert ENV_VARS[name][0] == default, name


def test_readme_table_is_the_models():
    """Rows are generated from the fields' descriptions and bounds (python -m glacier_pipelines.settings): no drift."""
    assert markdown_table() in _configuration_section()
    assert "| `GLACIER_BATCH_SIZE` | `500` | a whole number >= 1 | Most requests one run takes for one tenant. |" in markdown_table()


def test_every_env_var_the_code_reads_is_documented():
    used = set()
    for path in (ROOT / "glacier_pipelines").rglob("*.py"):
        used |= set(re.findall(r"[\"'](GLACIER_[A-Z0-9_]+)[\"']", path.read_text()))
    used.discard("GLACIER_IR")  # a storage class, not a variable
    assert used <= set(ENV_VARS), used - set(ENV_VARS)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_the_readme_points_at_the_generated_table_and_the_generator_rewrites_it_in_place():
    """The README links the page the generator writes; rewriting that page changes nothing; a page without a table is refused."""
    assert f"]({DOC_TARGET})" in README and f"python -m glacier_pipelines.settings {DOC_TARGET}" in README
    assert with_table(CONFIGURATION) == CONFIGURATION
    stale = CONFIGURATION.replace("| `GLACIER_BATCH_SIZE` | `500` |", "| `GLACIER_BATCH_SIZE` | `5` |")
    assert stale != CONFIGURATION and with_table(stale) == CONFIGURATION
    try:
        with_table("# Configuration\n\nno table here\n")
    except ValueError as exc:
        assert "no configuration table" in str(exc)
    else:
        raise AssertionError("a page without a table was accepted")


def test_headings_other_files_cite_by_name_are_still_reachable_from_the_readme():
    """Docstrings, bench/README.md and the generated docs/reliability.md cite README sections by title."""
    assert {"exit-statuses", "the-cli", "asset-graph", "architecture", "tests"} <= anchors(README)
    for title in ("Running in production", "Backfills", "Scaling beyond one machine", "Large files skip staging"):
        assert f"[{title}" in README, title
