"""``python -m glacier_pipelines.cli``: the console script without its entry point."""

import sys

from glacier_pipelines.cli import main

sys.exit(main())
