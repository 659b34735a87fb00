"""The model's fields seen as environment variables: their names, what each accepts in words, values as text.

``ENV_VARS`` (name -> (default as text, meaning)) is the view older callers read; it is derived
from the model like everything here.
"""

from __future__ import annotations

from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from glacier_pipelines.settings.model import PREFIX, GlacierSettings

FIELDS: dict[str, FieldInfo] = dict(GlacierSettings.model_fields)


def var_name(field: str) -> str:
    info = FIELDS[field]
    return info.validation_alias if isinstance(info.validation_alias, str) else PREFIX + field.upper()


VARIABLES: dict[str, str] = {var_name(f): f for f in FIELDS}  # environment variable -> field


def _number(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def expected(field: str) -> str:
    """What a variable accepts, in words: explicit on the field, or from its type and bounds."""
    info = FIELDS[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if extra.get("expected"):
        return str(extra["expected"])
    whole = info.annotation in (int, int | None)
    bounds: dict[str, Any] = {
        type(m).__name__: m for m in info.metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le))
    }
    low = f">= {_number(bounds['Ge'].ge)}" if "Ge" in bounds else f"> {_number(bounds['Gt'].gt)}" if "Gt" in bounds else ""
    kind = "a whole number" if whole else "a number"
    if "Le" in bounds:
        if "Ge" in bounds:
            return f"{kind} from {_number(bounds['Ge'].ge)} to {_number(bounds['Le'].le)}"
        return f"{kind} {low} and <= {_number(bounds['Le'].le)}" if low else f"{kind} <= {_number(bounds['Le'].le)}"
    return f"{kind} {low}".rstrip()


def as_text(value: Any) -> str:
    """A value as the environment spells it: '' for unset, 1/0 for booleans, 16 rather than 16.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, tuple):
        return ",".join(f"{x[0]}={x[1]}" if isinstance(x, tuple) else str(x) for x in value)
    return str(value)


def _defaults() -> dict[str, tuple[str, str]]:
    return {var_name(f): (as_text(info.default), info.description or "") for f, info in FIELDS.items()}


# name -> (default as text, meaning); an empty default means "unset". Derived from the model.
ENV_VARS: dict[str, tuple[str, str]] = _defaults()
