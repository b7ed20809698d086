"""FLOPs per window of a streamtag ONNX model, counted from its graph (a multiply-add is 2 FLOPs).

    python tools/model_flops.py models/streamtag.onnx            # MFLOP per window: front end, network, ops
    python tools/model_flops.py models/streamtag.onnx --batch 8 --json

The counting rules are in `streamtag/train/flops.py`. ``--batch`` fixes the model's dynamic batch axis; the
figures are divided by it, so they only change if some op's cost does not grow with the batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.errors import StreamtagError  # noqa: E402
from streamtag.train.flops import count_flops  # noqa: E402


def breakdown_table(report: dict) -> Table:
    mflop = report["mflop_per_window"]
    total = mflop["total"]
    table = Table(title=f"MFLOP per window (batch {report['batch']})")
    table.add_column("part")
    table.add_column("MFLOP", justify="right")
    table.add_column("share", justify="right")
    rows = [("front end", "frontend"), ("  of which conv-STFT", "stft"), ("network", "network"),
            ("total", "total"), ("conv", "conv"), ("matmul", "matmul"), ("gru", "gru"), ("other", "other")]
    for label, key in rows:
        table.add_row(label, f"{mflop[key]:.3f}", f"{mflop[key] / total:.1%}" if total else "-",
                      end_section=key in {"network", "total"})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="an ONNX model, e.g. models/streamtag.onnx")
    parser.add_argument("--batch", type=int, default=1, help="windows per run (default 1)")
    parser.add_argument("--json", action="store_true", help="print the breakdown as JSON")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch must be 1 or more")
    try:
        report = count_flops(args.path, batch=args.batch).to_dict()
    except StreamtagError as exc:
        raise SystemExit(f"model_flops.py: {exc}") from exc
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    console = Console()
    console.print(breakdown_table(report))
    for node in report["skipped"]:
        console.print(f"[yellow]counted as 0[/yellow]: {node['node']} ({node['op_type']}): {node['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
