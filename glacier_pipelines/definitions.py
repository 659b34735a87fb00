"""The code location: every domain's definitions merged, with resources from the environment."""

import dagster as dg

from glacier_pipelines.defs.archive import definitions as archive
from glacier_pipelines.defs.intake import definitions as intake
from glacier_pipelines.resources import resources_from_env

defs = dg.Definitions.merge(archive.defs, intake.defs, dg.Definitions(resources=resources_from_env()))
