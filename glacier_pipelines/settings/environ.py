"""Which environment a load reads: ``os.environ``, or the mapping ``load(environ)`` was handed (a context variable, so
that loads in other threads or tests never see each other's)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar

from pydantic_settings import EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("glacier_settings_environ", default=None)


class MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (``os.environ`` unless ``load`` was handed one)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = ENVIRON.get()
        return parse_env_vars(
            os.environ if environ is None else environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )
