"""``python -m parewire``: the same as the ``parewire`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
