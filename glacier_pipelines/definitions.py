"""The code location: every domain's definitions merged, with resources from the environment."""

from typing import Any

import dagster as dg

from glacier_pipelines.defs.archive import definitions as archive
from glacier_pipelines.defs.intake import definitions as intake
from glacier_pipelines.defs.restore import definitions as restore
from glacier_pipelines.defs.vault import definitions as vault
from glacier_pipelines.resources import resources_from_env


def build_defs(resources: dict[str, Any] | None = None) -> dg.Definitions:
    """All domains with the given resources (default: from the environment); tests override a few."""
    return dg.Definitions.merge(archive.defs, intake.defs, restore.defs, vault.defs,
                                dg.Definitions(resources=resources if resources is not None else resources_from_env()))


defs = build_defs()
