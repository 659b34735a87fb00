"""Pydantic's validation errors in this project's words: the field's path, what it accepts, what it got.

The pricing and lifecycle files and the restore events are pydantic models; their loaders turn
a ``ValidationError`` into one line per problem with :func:`problems`, so that an operator reads
``classes.GLACIER.storage_per_gb_month: must be at least 0, not -0.1`` instead of pydantic's
``Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

# Pydantic error type -> our sentence; {input} is the value shown with repr (shortened), other names come from the error's ctx.
MESSAGES = {
    "missing": "is missing",
    "int_type": "must be a whole number, not {input}",
    "int_parsing": "must be a whole number, not {input}",
    "int_from_float": "must be a whole number, not {input}",
    "float_type": "must be a number, not {input}",
    "float_parsing": "must be a number, not {input}",
    "finite_number": "must be a finite number, not {input}",
    "greater_than_equal": "must be at least {ge}, not {input}",
    "greater_than": "must be more than {gt}, not {input}",
    "less_than_equal": "must be at most {le}, not {input}",
    "bool_type": "must be true or false, not {input}",
    "bool_parsing": "must be true or false, not {input}",
    "string_type": "must be a string, not {input}",
    "string_too_short": "must be a non-empty string, not {input}",
    "string_too_long": "must be at most {max_length} characters long",
    "list_type": "must be a list, not {input}",
    "tuple_type": "must be a list, not {input}",
    "too_long": "must have at most {max_length} entries, not {input}",
    "dict_type": "must be a table, not {input}",
    "model_type": "must be a table, not {input}",
    "model_attributes_type": "must be a table, not {input}",
    "literal_error": "must be {expected}, not {input}",
}


class Problem(NamedTuple):
    """One validation problem: where (``a.b[0].c``, empty for the document itself), pydantic's error type, our sentence."""

    where: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def shown(value: Any, limit: int = 80) -> str:
    """A short, safe repr of a value for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def path(loc: tuple[Any, ...]) -> str:
    """``("rules", 0, "name")`` -> ``rules[0].name``."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def problems(exc: ValidationError, model: type[BaseModel] | None = None, messages: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem of ``exc``, in order; ``messages`` overrides :data:`MESSAGES` per error type.

    With ``model`` (the model that was validated) an unknown field names the allowed ones.
    """
    wording = {**MESSAGES, **(messages or {})}
    out = []
    for error in exc.errors(include_url=False):
        kind, loc, ctx = error["type"], tuple(error["loc"]), dict(error.get("ctx") or {})
        if kind == "extra_forbidden":
            allowed = sorted(allowed_fields(model, loc[:-1])) if model is not None else []
            text = f"unknown field {str(loc[-1])!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
            out.append(Problem(path(loc[:-1]), kind, text))
            continue
        if kind in ("value_error", "assertion_error"):
            text = str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
        elif kind in wording:
            values = {k: _number(v) for k, v in ctx.items()} | {"input": shown(error.get("input"))}
            text = wording[kind].format(**values)
        else:
            text = error["msg"]
        out.append(Problem(path(loc), kind, text))
    return out


def _number(value: Any) -> Any:
    """1.0 -> 1 in messages: the bounds of integer-valued constraints read as written."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def allowed_fields(model: Any, loc: tuple[Any, ...]) -> set[str]:
    """The field names (aliases where set) of the model found at ``loc`` inside ``model``; empty if none is."""
    current: Any = model
    for step in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for name, f in current.model_fields.items() if step in (name, f.alias)), None)
            current = field.annotation if field is not None else None
        else:  # a list, tuple or dict: the items' type
            args = typing.get_args(current)
            current = args[-1] if args else None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {f.alias or name for name, f in current.model_fields.items()}
    return set()


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation
