"""The code location: every domain's definitions merged, with resources from the environment."""

import dagster as dg

from glacier_pipelines.defs.archive.definitions import defs as archive_defs
from glacier_pipelines.defs.intake.definitions import defs as intake_defs
from glacier_pipelines.resources import resources_from_env

defs = dg.Definitions.merge(archive_defs, intake_defs, dg.Definitions(resources=resources_from_env()))
