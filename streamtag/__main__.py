"""`python -m streamtag` runs the command line."""

import sys

from streamtag.cli import main

sys.exit(main())
