"""Live latency, CPU use and offline speed of streamtag; the same as `streamtag bench`.

    python tools/bench_live.py [FILES...] [--provider cpu|cuda] [--hop 0.5] [--live-s 30] [--json]
"""

from __future__ import annotations

import argparse
import sys

from streamtag.commands.bench import __doc__ as BENCH_DOC
from streamtag.commands.bench import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=BENCH_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
