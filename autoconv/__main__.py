"""`python -m autoconv TARGET ...` is `autoconv-show TARGET ...`."""

import sys

from .cli import main

sys.exit(main())
