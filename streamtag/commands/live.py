"""`streamtag live`: tag what is playing, continuously; show it and serve it on a websocket feed."""

from __future__ import annotations

import argparse
import logging
import math
import sys

from streamtag.commands import options
from streamtag.core.smoothing import SmoothingConfig
from streamtag.feed import DEFAULT_HOST, DEFAULT_PORT, FeedConfig, parse_address
from streamtag.live import DEFAULT_HOP_S, LiveConfig, live_main
from streamtag.sinks.mqtt import PASSWORD_ENV, USER_ENV, parse_mqtt_url
from streamtag.sinks.osc import parse_osc_address
from streamtag.sources.choice import SourceSpec
from streamtag.sources.stdin import STDIN_FORMATS

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "live",
        help="tag what is playing, live (microphone, system audio, a file or stdin)",
        description=(
            "Tag audio continuously. Sources: mic (the default input, or --device), loopback (what this machine "
            "plays: the monitor of the default PulseAudio/PipeWire sink, or of the sink named by --device), a "
            "file (real time, or --fast), demo (the bundled recordings), or - for raw PCM on stdin, e.g. "
            "`ffmpeg -i URL -f f32le -ac 1 -ar 22050 - | streamtag live --source - --rate 22050`."
        ),
    )
    parser.add_argument("--source", default="auto", metavar="mic|loopback|demo|FILE|URL|-",
                        help="what to tag (default: the microphone, or the bundled demo recordings where there is "
                             "no audio input); a URL (http(s)://, rtsp://, rtmp://, .m3u8) is a network stream")
    parser.add_argument("--device", default=None, metavar="NAME|INDEX",
                        help="input device (mic), or sink name/index (loopback); see `streamtag devices`")
    parser.add_argument("--rate", type=int, default=None,
                        help="sample rate of stdin PCM (required with --source -), or the rate to open a device at")
    parser.add_argument("--format", dest="fmt", choices=sorted(STDIN_FORMATS), default="f32",
                        help="stdin PCM sample format: little-endian float32 or int16 (default f32)")
    parser.add_argument("--channels", type=int, default=None, help="channels of stdin PCM (default 1) or the device")
    parser.add_argument("--fast", action="store_true", help="read a file as fast as it can be tagged")
    parser.add_argument("--exit-on-loss", action="store_true",
                        help="end with an error (status 2) when the device or sound server goes away; by default "
                             "streamtag says \"source down\" (feed, pages, /health) and reopens it when it returns")
    options.add_hop(parser, default=DEFAULT_HOP_S)
    parser.add_argument("--smoothing", type=float, default=SmoothingConfig.time_constant_s, metavar="SECONDS",
                        help="time constant of the score smoothing (default %(default)s; 0 shows each window as is)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this much audio")
    options.add_model(parser)
    parser.add_argument("--ws", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}", metavar="HOST:PORT",
                        help=f"websocket feed address (default {DEFAULT_HOST}:{DEFAULT_PORT}; loopback only)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another name of this machine that browsers may use for the feed and its pages, e.g. "
                             "its LAN name with --ws 192.168.1.5:8765 (repeatable; loopback names always work)")
    parser.add_argument("--no-ws", action="store_true", help="no websocket feed")
    parser.add_argument("--mqtt", default=None, metavar="mqtt[s]://[USER@]HOST[:PORT][/PREFIX]",
                        help="also publish to an MQTT broker: retained PREFIX/state and PREFIX/genre, events, "
                             "availability and Home Assistant discovery (prefix default streamtag; user and "
                             f"password also from {USER_ENV} and {PASSWORD_ENV}; docs/integrations.md)")
    parser.add_argument("--osc", default=None, metavar="HOST:PORT",
                        help="also send each hop as OSC messages over UDP (/streamtag/...; docs/integrations.md)")
    parser.add_argument("--max-clients", type=int, default=16, help="feed client limit (default 16)")
    parser.add_argument("--no-tui", action="store_true", help="one line per hop instead of the terminal display")
    parser.add_argument("--json", action="store_true", help="JSON lines (the feed's messages) instead of text")
    parser.add_argument("--no-taste", action="store_true", help="show the crowd's taste; ignore a personal profile")
    parser.add_argument("--full-window", action="store_true",
                        help="compute each window's spectrogram whole instead of only the frames a hop adds "
                             "(the same scores, more CPU; to compare, as `streamtag bench` does)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    finite = (args.hop, args.smoothing) + (() if args.duration is None else (args.duration,))
    if not all(math.isfinite(x) for x in finite) or args.hop <= 0 or args.smoothing < 0 or (args.duration or 1) <= 0:
        print("streamtag: error: --hop and --duration must be positive numbers of seconds, --smoothing not negative",
              file=sys.stderr)
        return 2
    feed = None
    if not args.no_ws:
        host, port = parse_address(args.ws)
        feed = FeedConfig(host=host, port=port, max_clients=args.max_clients,
                          allowed_hosts=tuple(args.allow_host))
    if args.json:
        output = "json"
    elif args.no_tui or not sys.stdout.isatty():
        output = "lines"
    else:
        output = "tui"
    config = LiveConfig(
        source=SourceSpec(
            source=args.source, device=args.device, rate=args.rate, fmt=args.fmt, channels=args.channels,
            fast=args.fast,
        ),
        model_path=args.model,
        provider=args.provider,
        hop_s=args.hop,
        feed=feed,
        mqtt=None if args.mqtt is None else parse_mqtt_url(args.mqtt),
        osc=None if args.osc is None else parse_osc_address(args.osc),
        output=output,
        duration_s=args.duration,
        full_window=args.full_window,
        exit_on_loss=args.exit_on_loss,
        smoothing=SmoothingConfig(hop_s=args.hop, time_constant_s=args.smoothing),
    )
    return live_main(config, taste=None if args.no_taste else _taste_factory())


def _taste_factory():
    """The personal taste profile's live teacher, where the taste module provides one."""
    try:
        from streamtag.taste.teacher import LiveTeacher
    except ImportError:
        return None

    def make(engine, tagger):
        teacher = LiveTeacher.open(engine.info, tagger=tagger)
        if not teacher.profile.labels:
            from streamtag.commands.taste import say_where_the_labels_are

            say_where_the_labels_are(engine.info)
        return teacher

    return make
