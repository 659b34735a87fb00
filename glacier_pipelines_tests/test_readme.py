"""The README's promises that can drift: the env-var table, the two quick-start commands, CI's command."""

from __future__ import annotations

import re
from pathlib import Path

from glacier_pipelines.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_lists_every_env_var():
    table = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(GLACIER_[A-Z0-9_]+)` \| ([^|]+) \|", README, re.M)}
    assert set(table) == set(ENV_VARS)
    for name, (default, _) in ENV_VARS.items():
        shown = table[name].strip()
        assert shown == (f"`{default}`" if default else "unset"), name


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
