"""The code location: every domain's definitions merged, with resources from the environment."""

from typing import Any

import dagster as dg

from glacier_pipelines.core.transfer import limit_malloc_arenas
from glacier_pipelines.defs.archive import definitions as archive
from glacier_pipelines.defs.executors import executor_from_env
from glacier_pipelines.defs.intake import definitions as intake
from glacier_pipelines.defs.lifecycle import definitions as lifecycle
from glacier_pipelines.defs.operations import definitions as operations
from glacier_pipelines.defs.restore import definitions as restore
from glacier_pipelines.defs.vault import definitions as vault
from glacier_pipelines.resources import resources_from_env
from glacier_pipelines.resources.lifecycle import with_lifecycle


def build_defs(resources: dict[str, Any] | None = None) -> dg.Definitions:
    """All domains with the given resources (default: from the environment); tests override a few."""
    return dg.Definitions.merge(
        archive.defs,
        intake.defs,
        lifecycle.defs,
        operations.defs,
        restore.defs,
        vault.defs,
        dg.Definitions(
            resources=with_lifecycle(resources if resources is not None else resources_from_env()), executor=executor_from_env()
        ),
    )


limit_malloc_arenas()  # run workers load this module before their threads start: see its docstring
defs = build_defs()
