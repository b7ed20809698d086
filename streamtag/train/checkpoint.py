"""The files a training run keeps in its folder: ``last.pt`` after every epoch, with everything a resumed run
needs to continue exactly as an uninterrupted one (model, optimiser, schedule, the numpy and torch random
states, the loop's state); ``best.pt`` when the valid score improves, the model the run keeps; and
``history.json``, the epoch reports."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamtag.errors import StreamtagError
from streamtag.train.config import TrainConfig
from streamtag.train.crnn import ModelConfig

CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"
HISTORY = "history.json"

# A run may be extended, cut short or moved to another device when resumed; any other change (the tracks,
# the recipe) would silently splice two different runs into one checkpoint.
RESUMABLE_CHANGES = ("epochs", "patience", "max_minutes", "device")


def strict_json(value):
    """``value`` with NaN and infinities as None: the valid metrics of a run with no valid set are NaN, and
    NaN is not JSON (other languages' parsers reject it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def run_record(model_config: ModelConfig, config: TrainConfig, *, n_tracks: int, extra_state: dict | None) -> dict:
    """What both checkpoints say about the run: its configurations, how many tracks it trains on (which a
    resume checks) and the caller's ``extra_state`` (its provenance)."""
    return {"model_config": model_config.to_dict(), "train_config": asdict(config), "n_train_tracks": n_tracks,
            **(extra_state or {})}


def save_best(out_dir: Path, model: nn.Module, *, epoch: int, metrics: dict, run: dict) -> None:
    torch.save({"model": model.state_dict(), "epoch": epoch, "metrics": metrics, **run}, out_dir / CHECKPOINT_BEST)


def save_last(out_dir: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
              scheduler: torch.optim.lr_scheduler.LRScheduler, rng: np.random.Generator, loop: dict, run: dict) -> None:
    """Written beside and then renamed over the previous one, so a crash while writing leaves that intact."""
    path = out_dir / CHECKPOINT_LAST
    tmp = path.with_suffix(".tmp")
    torch.save({
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "loop": loop, **run,
    }, tmp)
    tmp.replace(path)


def write_history(out_dir: Path, history: list[dict]) -> None:
    (out_dir / HISTORY).write_text(json.dumps(strict_json(history), indent=1, allow_nan=False) + "\n")


def _check_same_run(saved: dict, config: TrainConfig, n_tracks: int, path: Path) -> None:
    defaults = asdict(TrainConfig())  # a checkpoint from before an option existed ran with its default
    before = {**defaults, **saved.get("train_config", {})}
    changed = [key for key, value in asdict(config).items() if key not in RESUMABLE_CHANGES and before[key] != value]
    if saved.get("n_train_tracks", n_tracks) != n_tracks:
        changed.append(f"the training tracks ({saved['n_train_tracks']} then, {n_tracks} now)")
    if changed:
        raise StreamtagError(f"{path}: cannot resume a different run (changed: {', '.join(changed)}); "
                             "drop --resume or train into another --out folder")


def restore_last(path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, rng: np.random.Generator, config: TrainConfig,
                 n_tracks: int, device: torch.device) -> dict:
    """Load ``last.pt`` into the run's model, optimiser, schedule and random states, after checking that it is
    the same run (the same training tracks and configuration; only ``RESUMABLE_CHANGES`` may differ), or
    refuse. Returns the loop's state as saved."""
    saved = torch.load(path, map_location=device, weights_only=False)
    _check_same_run(saved, config, n_tracks, path)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rng.bit_generator.state = saved["numpy_rng"]
    torch.set_rng_state(saved["torch_rng"])
    return saved["loop"]
