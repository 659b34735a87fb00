"""The configuration table of ``docs/configuration.md``, generated from the model (a test keeps the page identical)."""

from __future__ import annotations

from glacier_pipelines.settings.variables import FIELDS, as_text, expected, var_name


def markdown_table() -> str:
    """The configuration table of ``DOC_TARGET``, one row per variable, from the model."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for field, info in FIELDS.items():
        default = as_text(info.default)
        rows.append(f"| `{var_name(field)}` | {f'`{default}`' if default else 'unset'} | {expected(field)} | {info.description} |")
    return "\n".join(rows) + "\n"


# The page that holds the generated table (relative to the repository root); the README links to it.
DOC_TARGET = "docs/configuration.md"
TABLE_HEADER = "| variable | default |"


def with_table(doc: str) -> str:
    """``doc`` with its configuration table replaced by ``markdown_table()``; a page without one is refused."""
    start = doc.find("\n" + TABLE_HEADER)
    if start == -1:
        raise ValueError(f"no configuration table (a line starting {TABLE_HEADER!r}) to replace; it lives in {DOC_TARGET}")
    start += 1
    end = doc.find("\n\n", start)
    return doc[:start] + markdown_table() + (doc[end + 1 :] if end != -1 else "")
