"""`streamtag serve`: tag many live streams at once through one model (docs/serve.md)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from streamtag.commands import options
from streamtag.core.batching import BatchPolicy
from streamtag.errors import StreamtagError
from streamtag.feed import DEFAULT_HOST, DEFAULT_PORT, FeedConfig, parse_address
from streamtag.live import DEFAULT_HOP_S


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="tag many streams at once (network streams, files, devices), one model, one port",
        description="Serve many live streams through one model with dynamic batching: each stream's feed at "
                    "ws://HOST:PORT/streams/<id>, all of them at /streams, an index at http://HOST:PORT/streams.",
    )
    parser.add_argument("sources", nargs="*", metavar="URL_OR_PATH",
                        help="streams to tag: http(s)/Icecast/HLS/RTSP URLs, files, mic, loopback")
    parser.add_argument("--config", type=Path, help="a TOML file of [[stream]] tables (docs/serve.md)")
    parser.add_argument("--loop", action="store_true", help="files given on the command line start again at their end")
    options.add_hop(parser, default=DEFAULT_HOP_S)
    options.add_model(parser)
    parser.add_argument("--ws", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}", metavar="HOST:PORT",
                        help=f"address of the feeds and pages (default {DEFAULT_HOST}:{DEFAULT_PORT})")
    parser.add_argument("--max-clients", type=int, default=64, help="feed client limit, all streams together")
    parser.add_argument("--max-batch", type=int, default=BatchPolicy.max_windows,
                        help="windows per model run at most (default %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=BatchPolicy.max_wait_s * 1000,
                        help="how long a window may wait for others to fill its batch (default %(default)s ms)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamtag.serve import ServeConfig, StreamConfig, load_config, serve, stream_ids

    streams = load_config(args.config) if args.config else []
    streams += [StreamConfig(id=stream_id, source=source, loop=args.loop)
                for stream_id, source in zip(stream_ids(args.sources), args.sources, strict=True)]
    if not streams:
        raise StreamtagError("nothing to serve: give streams (URLs, files, mic) or --config streams.toml")
    if len({s.id for s in streams}) != len(streams):
        raise StreamtagError("two streams have the same id; give the --config streams ids of their own")
    host, port = parse_address(args.ws)
    config = ServeConfig(
        streams=tuple(streams), model_path=args.model, provider=args.provider, hop_s=args.hop,
        feed=FeedConfig(host=host, port=port, max_clients=args.max_clients),
        batch=BatchPolicy(max_windows=args.max_batch, max_wait_s=args.max_wait_ms / 1000),
        duration_s=args.duration,
    )
    return asyncio.run(serve(config))
