"""`python -m ptcc` is `ptcc-record`."""

import sys

from .cli import main

sys.exit(main())
