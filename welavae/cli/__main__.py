"""``python -m welavae.cli``: the command line."""
import sys

from . import main

sys.exit(main())
