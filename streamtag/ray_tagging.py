"""Whole catalogues on Ray: `tag --ray`. The file list -> (decode) -> one Tagger per actor -> JSON records.

Faithful to `tag`: a file is the unit of work, and each actor holds the Engine and Tagger `tag` would build
(same model, hop, batch size and front end), so every window is cut, zero-padded and scored as the
single-process path does it. A file's windows are not spread over actors: they share spectrogram frames
(``Engine.stream``), which a split would compute twice, and the clip summary needs all of them.

Parallel, two ways:
- CPU actors, one per CPU with one onnxruntime thread each, run ``tag_files.tag_file`` itself: decoding and
  inference of one file in one process, many files at once, no samples through the object store.
- GPU actors (one GPU each) are fed by a decode stage of CPU tasks, so a GPU does not wait on libsndfile and
  soxr; the decoded audio keeps ``iter_audio``'s blocks, which the actor feeds in order (``tag_blocks``).

The Ray cluster must see the files (shared storage) and have streamtag installed on its nodes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import ray.data

from streamtag.audio import audio_files_in, iter_audio
from streamtag.core.tagger import Tagger
from streamtag.errors import AudioFileError, StreamtagError
from streamtag.tag_files import block_windows, file_tags, tag_file

log = logging.getLogger(__name__)

# Input blocks: about this many files each at most, and at least a few blocks per CPU, so that work spreads
# over the actors from the start without one block per file on a catalogue of millions.
FILES_PER_BLOCK = 64
BLOCKS_PER_CPU = 4
# One onnxruntime thread per CPU actor: N single-threaded sessions beat one N-threaded session on small batches.
CPU_ACTOR_THREADS = 1
CUDA_DRIVER_FILE = Path("/proc/driver/nvidia/version")
JOIN_TIMEOUT_S = 10.0  # to open a connection to --ray-address before Ray is asked to join it


@dataclass(frozen=True)
class TagJob:
    """What every actor needs to build the Tagger that `tag` would build."""

    model: str | None  # None: the shipped model, as installed on each node
    provider: str  # "auto" | "cpu" | "cuda", as given on the command line
    hop_s: float | None
    frontends: tuple[str, ...]  # the model's streaming front ends (empty: none)
    taste_scorer: object = None  # a Profile's scorer (picklable), or None for the crowd's taste
    taste_source: str = "crowd"


@dataclass(frozen=True)
class Tagged:
    """One file's outcome: ``line`` is its JSON line, a result as `tag --json` prints it or an error record."""

    file: str
    line: str
    failed: bool
    nonfinite_samples: int = 0

    @property
    def record(self) -> dict:
        return json.loads(self.line)


def collect_files(paths: Iterable[Path]) -> list[str]:
    """The files to tag, as given: folders are walked (``audio_files_in``), anything else is kept (a missing or
    undecodable one becomes an error record). A file named twice is tagged once."""
    found: dict[str, None] = {}
    for path in paths:
        for file in audio_files_in(path) if Path(path).is_dir() else [path]:
            found.setdefault(str(file), None)
    return list(found)


def cuda_present() -> bool:
    """Whether this machine's onnxruntime has CUDA and an NVIDIA driver is loaded."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers() and CUDA_DRIVER_FILE.exists()


@contextmanager
def ray_session(*, address: str | None = None, num_cpus: int | None = None, verbose: bool = False) -> Iterator[None]:
    """Ray for the duration of a run: the session already started in this process (a test's, a notebook's),
    the cluster at ``address``, or a local one on ``num_cpus`` CPUs (default: all), quiet and without a
    dashboard. Only a session started here is shut down here."""
    _quiet_ray(verbose)
    if ray.is_initialized():
        yield
        return
    level = logging.INFO if verbose else logging.ERROR
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, log_to_driver=verbose, logging_level=level)
        else:
            # "local": a new instance even where `ray start` left one (or its address file) on this machine
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False, logging_level=level)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise StreamtagError(f"cannot start or join {where} ({exc}); check the address (ray status on the head "
                             "node), or leave --ray-address out to run on this machine") from exc
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse an address where nothing listens, at once: ray.init retries an unreachable GCS for ever."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray parses itself (and refuses with its own message)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=JOIN_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} within {JOIN_TIMEOUT_S:.0f} s: {exc}") from exc


def _quiet_ray(verbose: bool) -> None:
    """No Ray Data progress bars or execution banners: the command's stderr has its own progress bar."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = verbose
    context.print_on_execution_start = verbose
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)


def tag_on_ray(files: list[str], job: TagJob, *, sample_rate: int,
               restart_lost_actors: bool = False) -> Iterator[Tagged]:
    """Tag ``files`` on the Ray session of this process (``ray_session``), yielding each file's outcome as it
    completes (in no particular order).

    ``restart_lost_actors``: Ray Data's default, which a cluster whose nodes come and go wants; it also logs a
    C++ error line per actor on stderr that is Ray's own noise (ray-project/ray#53727). Off, a lost actor ends
    the run, and ``--out`` with ``--resume`` carries on from what it had written."""
    if not files:
        return
    resources = ray.cluster_resources()
    n_cpus, n_gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    gpus = _use_gpus(job.provider, n_gpus)
    n_blocks = min(len(files), max(BLOCKS_PER_CPU * n_cpus, math.ceil(len(files) / FILES_PER_BLOCK)))
    actors = max(1, min(n_gpus if gpus else n_cpus, len(files)))
    data = ray.data.from_items([{"file": f} for f in files], override_num_blocks=n_blocks)
    actor_cpus = 1
    if gpus:  # decoding in CPU tasks of its own, beside the GPU actors
        data = data.map_batches(decode_files, fn_kwargs={"sample_rate": sample_rate}, batch_size=1,
                                batch_format="numpy", num_cpus=1)
        actor_cpus = 1 if n_cpus > n_gpus else 0  # else no CPU would be left to decode on
    with warnings.catch_warnings():  # max_restarts has no named parameter yet (Ray 2.60)
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", category=DeprecationWarning)
        tagged = data.map_batches(
            TagActor, fn_constructor_kwargs={"job": job, "gpu": gpus}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=actors, max_size=actors), num_cpus=actor_cpus,
            num_gpus=1 if gpus else 0, **({} if restart_lost_actors else {"max_restarts": 0}),
        )
    log.info("tagging %d files in %d blocks on %d %s actors", len(files), n_blocks, actors, "GPU" if gpus else "CPU")
    for row in tagged.iter_rows():
        yield Tagged(file=str(row["file"]), line=str(row["line"]), failed=bool(row["failed"]),
                     nonfinite_samples=int(row["nonfinite"]))


def _use_gpus(provider: str, n_gpus: int) -> bool:
    if provider == "cpu":
        return False
    if provider == "cuda" and n_gpus == 0:
        raise StreamtagError("--provider cuda, but the Ray cluster has no GPUs; use --provider cpu or auto")
    # auto: this machine's GPUs where its onnxruntime would load CUDA; a cluster's, which it cannot check
    return n_gpus > 0 and (provider == "cuda" or cuda_present() or _has_other_nodes())


def _has_other_nodes() -> bool:
    """Whether the cluster has a node besides this machine (whose GPUs this machine cannot check)."""
    here = ray.util.get_node_ip_address()
    return any(node.get("Alive") and node.get("NodeManagerAddress") != here for node in ray.nodes())


def decode_files(batch: dict[str, np.ndarray], *, sample_rate: int) -> dict[str, list]:
    """Decode stage: each file's mono samples at ``sample_rate`` in ``iter_audio``'s blocks (their sizes kept,
    as int64 bytes, so the actor feeds the very same chunks), or its decoding error. Binary columns only, so
    a block of errors has the same Arrow types as a block of audio."""
    out: dict[str, list] = {"file": [], "samples": [], "block_sizes": [], "error": []}
    for file in batch["file"]:
        try:
            blocks = list(iter_audio(str(file), sample_rate=sample_rate))
            error = ""
        except AudioFileError as exc:
            blocks, error = [], str(exc)
        out["file"].append(str(file))
        out["samples"].append(np.concatenate(blocks).tobytes() if blocks else b"")
        out["block_sizes"].append(np.array([block.size for block in blocks], dtype=np.int64).tobytes())
        out["error"].append(error)
    return out


class TagActor:
    """Actor stage: one Engine and one Tagger per actor, the ones `tag` would build on this node."""

    def __init__(self, job: TagJob, gpu: bool) -> None:
        from streamtag.engine import Engine
        from streamtag.parts import frontend_for

        provider = job.provider if gpu else "cpu"
        # `tag` runs onnxruntime on all cores, which picks the front end for them; this actor has one thread,
        # so it asks for that front end by name, and the frames are computed by the same graph.
        frontend = frontend_for("cuda" if gpu else "cpu", 0)
        self.engine = Engine(job.model, provider=provider, threads=CPU_ACTOR_THREADS,
                             frontend=frontend if frontend in job.frontends else None)
        self.tagger = Tagger(self.engine, hop_samples=self.engine.info.hop_samples_for(job.hop_s),
                             taste_scorer=job.taste_scorer)
        self.taste_source = job.taste_source

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        """Files in, records out: decoded here (CPU actors) or by the decode stage (``samples``, GPU actors)."""
        out: dict[str, list] = {"file": [], "line": [], "failed": [], "nonfinite": []}
        for i, file in enumerate(map(str, batch["file"])):
            try:
                if "samples" not in batch:
                    record = tag_file(self.tagger, Path(file))
                elif batch["error"][i]:
                    raise AudioFileError(str(batch["error"][i]))
                else:
                    audio = np.frombuffer(batch["samples"][i], dtype=np.float32)
                    sizes = np.frombuffer(batch["block_sizes"][i], dtype=np.int64)
                    record = tag_blocks(self.tagger, file, np.split(audio, np.cumsum(sizes)[:-1]))
            except AudioFileError as exc:  # as `tag` reports it, but as a record, and the run goes on
                record, nonfinite = {"file": file, "error": str(exc)}, 0
            else:
                record, nonfinite = record | {"taste_source": self.taste_source}, self.tagger.nonfinite_samples
            out["file"].append(file)
            out["line"].append(json.dumps(record))
            out["failed"].append("error" in record)
            out["nonfinite"].append(nonfinite)
        return out


def tag_blocks(tagger: Tagger, file: str, blocks: Iterable[np.ndarray]) -> dict:
    """``tag_files.tag_file`` on ``iter_audio``'s blocks decoded elsewhere: the same feeds, ``finish()`` and
    summary."""
    return file_tags(tagger, file, *block_windows(tagger, blocks))
