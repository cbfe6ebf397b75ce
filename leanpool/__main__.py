"""``python -m leanpool``: the `leanpool` command."""

import sys

from leanpool._cli import main

sys.exit(main())
