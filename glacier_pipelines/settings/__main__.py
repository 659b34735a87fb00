"""``python -m glacier_pipelines.settings [docs/configuration.md]``: print the configuration table, or rewrite it in that page."""

from __future__ import annotations

import sys
from pathlib import Path

from glacier_pipelines.settings.table import markdown_table, with_table


if len(sys.argv) > 1:
    doc_path = Path(sys.argv[1])
    try:
        doc_path.write_text(with_table(doc_path.read_text()))
    except (OSError, ValueError) as exc:
        sys.exit(f"{doc_path}: {exc}")
else:
    print(markdown_table(), end="")
