"""Every environment variable the project reads: one typed model with each default, range and meaning.

``GlacierSettings`` (pydantic-settings, settings/model.py) reads the ``GLACIER_*`` variables and
``DAGSTER_HOME``; ``load()`` (settings/loading.py) builds it once per environment and refuses bad
values with a :class:`SettingsError` naming every bad variable and what it accepts, one per line.
The code location (``resources_from_env``) and the CLI call it before anything runs, so a typo
fails at load.

The older views stay for their callers: ``env(name)`` (a variable's value as text),
``ENV_VARS`` (name -> (default, meaning), settings/variables.py) and the ``Settings`` dataclass
(settings/resolved.py); all three are derived from the model. The configuration table of
``docs/configuration.md`` (``DOC_TARGET``) is ``markdown_table()``'s output (settings/table.py),
and a test keeps the two identical (``python -m glacier_pipelines.settings`` prints it; with a
path, rewrites it there).

This package's names are the public ones; import them from here.
"""

from __future__ import annotations

from glacier_pipelines.settings.loading import SettingsError, env, load
from glacier_pipelines.settings.model import PREFIX, GlacierSettings
from glacier_pipelines.settings.resolved import Settings
from glacier_pipelines.settings.table import DOC_TARGET, TABLE_HEADER, markdown_table, with_table
from glacier_pipelines.settings.variables import ENV_VARS, FIELDS, VARIABLES, as_text, expected, var_name

__all__ = [
    "DOC_TARGET",
    "ENV_VARS",
    "FIELDS",
    "PREFIX",
    "TABLE_HEADER",
    "VARIABLES",
    "GlacierSettings",
    "Settings",
    "SettingsError",
    "as_text",
    "env",
    "expected",
    "load",
    "markdown_table",
    "var_name",
    "with_table",
]
