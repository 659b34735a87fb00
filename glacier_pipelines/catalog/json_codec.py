"""How the catalog's JSON columns (request bodies, stages, messages, response contents) are written and read.

orjson instead of the standard library's json: every request's columns are decoded or encoded about 25
times on their way through the steps, and on 10,000 small files (bench/small_files.py) the standard
codec was about a tenth of the pipeline's CPU; orjson cut the whole run's CPU by 8% (14.5 against
15.7 CPU-s, 3 rounds each). The text is what json.dumps would write, but compact and in UTF-8:
the columns are read back as values, never compared as text.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # int keys become strings, as json.dumps writes them


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=_OPTIONS).decode()


loads = orjson.loads
