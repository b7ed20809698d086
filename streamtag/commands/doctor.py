"""`streamtag doctor`: checks what live tagging needs on this machine, and says what to fix.

Each check is one line: ok, or a problem and the command or setting that fixes it. Exit status 0 when every
check passes, 1 when one fails (warnings, such as no CUDA, do not fail). Nothing is changed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from streamtag.commands import options
from streamtag.errors import StreamtagError
from streamtag.feed import DEFAULT_HOST, DEFAULT_PORT, parse_address


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help="check audio, model, provider, port and profile; say what to fix")
    options.add_model(parser)
    parser.add_argument("--ws", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}", metavar="HOST:PORT",
                        help="the feed address live would use (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="the checks as JSON")
    parser.set_defaults(run=run)


def _portaudio() -> Check:
    from streamtag.sources.portaudio import list_input_devices

    try:
        inputs = list_input_devices()
    except StreamtagError as exc:
        return Check("PortAudio", "fail", str(exc))
    if not inputs:
        return Check("PortAudio", "warn", "loaded, but it sees no input device: `live` will play the demo recordings; "
                     "plug in a microphone, or use --source loopback|FILE|URL|-")
    default = next((d.name for d in inputs if d.is_default), inputs[0].name)
    return Check("PortAudio", "ok", f"{len(inputs)} input devices; default {default}")


def _sound_server() -> Check:
    from streamtag.sources.pulse import list_monitor_sources

    try:
        monitors = list_monitor_sources()
    except StreamtagError as exc:
        return Check("PulseAudio/PipeWire", "warn", f"{exc} (needed for --source loopback on Linux)")
    if not monitors:
        return Check("PulseAudio/PipeWire", "warn", "running, but no sink monitors: --source loopback has nothing to record")
    default = next((m.sink for m in monitors if m.is_default), monitors[0].sink)
    return Check("PulseAudio/PipeWire", "ok", f"{len(monitors)} loopback sources; default sink {default}")


def _model(args) -> tuple[Check, object | None]:
    from streamtag.engine import Engine

    try:
        engine = Engine(args.model, provider=args.provider)
    except StreamtagError as exc:
        return Check("model", "fail", str(exc)), None
    info = engine.info
    parts = (f"{engine.parts.frontend_kind} front end, each frame once" if engine.parts is not None
             else "every window whole (no streaming parts beside it)")
    return Check("model", "ok", f"{info.name} {info.version}: {len(info.labels)} genres, {len(info.tag_names)} tags; "
                 f"{parts}"), engine


def _provider(engine) -> Check:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if engine is not None and engine.provider == "cuda":
        return Check("provider", "ok", "CUDA")
    if "CUDAExecutionProvider" in available:
        return Check("provider", "warn", "CPU: onnxruntime has CUDA, but no NVIDIA driver or CUDA/cuDNN libraries load")
    return Check("provider", "ok", f"CPU (onnxruntime {ort.__version__}; install onnxruntime-gpu for CUDA)")


def _port(address: str) -> Check:
    host, port = parse_address(address)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return Check("feed port", "fail", f"{host}:{port} is taken ({exc.strerror}): another streamtag live? "
                         "Choose another with --ws HOST:PORT (or ws in the config file), or use --no-ws")
    return Check("feed port", "ok", f"{host}:{port} is free")


def _profile(engine) -> Check:
    from streamtag.taste.profile import ModelIdentity
    from streamtag.taste.store import elsewhere_notice, load_active_profile, profile_path_for

    if engine is None:
        return Check("taste profile", "warn", "not checked: no model")
    identity = ModelIdentity.from_info(engine.info)
    try:
        profile = load_active_profile(engine.info)
    except StreamtagError as exc:
        return Check("taste profile", "fail", str(exc))
    path = profile_path_for(identity)
    if profile is None:
        notice = elsewhere_notice(identity)
        if notice:
            return Check("taste profile", "warn", notice)
        return Check("taste profile", "ok", f"none yet (the crowd's taste is shown); {path}")
    return Check("taste profile", "ok", f"{profile.n_likes} likes, {profile.n_dislikes} dislikes; {path}")


def checks(args) -> list[Check]:
    model, engine = _model(args)
    steps: list[Callable[[], Check]] = [_portaudio, _sound_server, lambda: model, lambda: _provider(engine),
                                        lambda: _port(args.ws), lambda: _profile(engine)]
    return [step() for step in steps]


def run(args: argparse.Namespace) -> int:
    results = checks(args)
    if args.json:
        print(json.dumps([asdict(c) for c in results], indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        width = max(len(c.name) for c in results)
        for c in results:
            print(f"{marks[c.status]}  {c.name:<{width}}  {c.detail}")
    failed = [c.name for c in results if c.status == "fail"]
    if failed and not args.json:
        print(f"streamtag doctor: {len(failed)} to fix: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
