"""``python -m gradcheck_kit``: the ``gradcheck-kit`` command line, for environments where the
console script is not on ``PATH`` (``python -m gradcheck_kit check reference_layers``)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
