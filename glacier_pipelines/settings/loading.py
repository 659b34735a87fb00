"""Loading the settings: validated once per environment, every bad variable refused in one message."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import ValidationError

from glacier_pipelines.settings.environ import ENVIRON
from glacier_pipelines.settings.model import PREFIX, GlacierSettings
from glacier_pipelines.settings.variables import FIELDS, VARIABLES, as_text, expected, var_name


class SettingsError(ValueError):
    """One or more variables have values the project cannot use; the message has one line per variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(problems))


def _shown(field: str, raw: str | None) -> str:
    """The offending value for a message; secrets (URLs with passwords) show their scheme at most."""
    info = FIELDS[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if raw is None:
        return "its default"
    if extra.get("secret"):
        scheme = urlsplit(raw).scheme if "://" in raw else ""
        return f"a value starting {scheme}:// (rest not shown)" if scheme else "a value (not shown)"
    return repr(raw)


def _relevant(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in environ.items() if k.upper().startswith(PREFIX) or k.upper() == "DAGSTER_HOME"))


@lru_cache(maxsize=64)
def _load(items: tuple[tuple[str, str], ...]) -> GlacierSettings:
    environ = dict(items)
    token = ENVIRON.set(environ)
    try:
        return GlacierSettings()  # type: ignore[call-arg]  # pydantic-settings reads the fields from the environment
    except ValidationError as exc:
        upper = {k.upper(): v for k, v in environ.items()}
        problems: dict[str, str] = {}
        for error in exc.errors():
            loc = str(error["loc"][0]) if error["loc"] else ""
            field = loc if loc in FIELDS else VARIABLES.get(loc)
            if field is None or var_name(field) in problems:
                continue
            name = var_name(field)
            problems[name] = f"{name}: expected {expected(field)}, got {_shown(field, upper.get(name))}"
        raise SettingsError(list(problems.values()) or [str(exc)]) from None
    finally:
        ENVIRON.reset(token)


def load(environ: Mapping[str, str] | None = None) -> GlacierSettings:
    """The validated settings of ``environ`` (default: the process environment); raises SettingsError."""
    return _load(_relevant(os.environ if environ is None else environ))


def env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """One variable's validated value as text ('' when unset): a view of ``load(environ)``."""
    return as_text(getattr(load(environ), VARIABLES[name]))
