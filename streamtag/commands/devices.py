"""`streamtag devices`: the audio inputs PortAudio sees, the default one, and the loopback sources."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from streamtag.errors import DeviceError
from streamtag.sources.portaudio import list_input_devices
from streamtag.sources.pulse import list_monitor_sources, list_pulse_sources


def register(subparsers) -> None:
    parser = subparsers.add_parser("devices", help="list audio inputs, marking the default and the loopback sources")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inputs = list_input_devices()
    try:
        monitors = list_monitor_sources()
        pulse_sources = list_pulse_sources()
        monitor_error = None
    except DeviceError as exc:  # no sound server: the PortAudio list is still worth showing
        monitors, pulse_sources, monitor_error = [], [], str(exc)
    if args.json:
        print(json.dumps({"inputs": [asdict(d) for d in inputs], "pulse_sources": pulse_sources,
                          "loopback": [asdict(m) for m in monitors]}, indent=2))
        return 0
    if not inputs:
        print("No audio inputs found.", file=sys.stderr)
    else:
        print("Inputs (--source mic --device INDEX|NAME):   * default   L loopback")
        for d in inputs:
            mark = ("*" if d.is_default else " ") + ("L" if d.is_loopback else " ")
            print(f" {mark} {d.index:3d}  {d.name}  [{d.host_api}, {d.channels} ch, {d.default_rate:.0f} Hz]")
    if pulse_sources:
        print("\nPulseAudio/PipeWire sources (--source mic --device NAME):")
        for name in pulse_sources:
            print(f"    {name}")
    if monitors:
        print("\nLoopback: what a sink plays (--source loopback [--device SINK]):   * default sink")
        for m in monitors:
            print(f" {'*' if m.is_default else ' '}  {m.sink}  (records {m.name})")
    elif monitor_error:
        print(f"\nLoopback: {monitor_error}")
    return 0
