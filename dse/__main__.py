"""`python -m dse ...` is the `dse` command."""
import sys

from .cli import main

sys.exit(main())
