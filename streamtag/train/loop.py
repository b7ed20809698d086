"""Multi-task training on cached log-mels: genre, crowd taste and GEMS moods, and, where a teacher's targets are
given, its tags and features (losses.py, distill.py). Tracks without labels teach only the teacher's targets.

Every epoch draws random 3 s crops from each training track's cached log-mel (crops aligned to the STFT hop,
so they equal what the exported model computes on raw audio), augments them (augment.py), and validates
clip-level on the valid split (validation.py). The checkpoint written after each epoch holds the model,
optimiser, schedule, the numpy and torch random states and the loop's state (checkpoint.py), so a resumed run
continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from streamtag.train.augment import mixup
from streamtag.train.averaging import averaged_model, update_average
from streamtag.train.checkpoint import CHECKPOINT_LAST, restore_last, run_record, save_best, save_last, write_history
from streamtag.train.config import TrainConfig
from streamtag.train.crnn import CRNN, ModelConfig
from streamtag.train.losses import BatchTargets, multitask_loss
from streamtag.train.training_set import TrainingSet, training_batch
from streamtag.train.validation import NOT_VALIDATED, validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    train_loss: float
    valid_accuracy: float
    valid_taste_spearman: float
    valid_mood_correlation: float
    valid_score: float
    improved: bool
    seconds: float


@dataclass
class LoopState:
    """What the loop carries from one epoch to the next; ``last.pt`` holds it (``to_dict``), so a resumed run
    continues where it stopped."""

    epoch: int = 0  # epochs done
    best_score: float = -math.inf
    since_best: int = 0  # epochs since the valid score last improved
    history: list[EpochReport] = field(default_factory=list)
    average: dict[str, torch.Tensor] | None = None  # mean of the weights over the averaged epochs so far
    averaged: int = 0  # epochs in that mean

    def record(self, report: EpochReport) -> None:
        """Count the epoch ``report`` describes. An improvement resets the patience; its NaN score (a run
        without a valid set) leaves the best score as it was."""
        self.epoch = report.epoch
        if report.improved:
            self.best_score = self.best_score if math.isnan(report.valid_score) else report.valid_score
            self.since_best = 0
        else:
            self.since_best += 1
        self.history.append(report)

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "best_score": self.best_score, "since_best": self.since_best,
                "history": [asdict(r) for r in self.history], "average": self.average, "averaged": self.averaged}

    @classmethod
    def from_dict(cls, saved: dict) -> LoopState:
        # a last.pt written before this class holds the averaging keys only once averaging has begun
        return cls(epoch=saved["epoch"], best_score=saved["best_score"], since_best=saved["since_best"],
                   history=[EpochReport(**r) for r in saved["history"]], average=saved.get("average"),
                   averaged=saved.get("averaged", 0))


def _schedule(config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:  # linear warm-up, then cosine decay to zero at the last epoch
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return factor


class _Run:
    """One run's data and recipe, and what it trains: the model, its optimiser and schedule, and the numpy
    random stream that every crop, augmentation and mixup is drawn from."""

    def __init__(self, model_config: ModelConfig, config: TrainConfig, train_set: TrainingSet) -> None:
        self.model_config, self.config, self.train_set = model_config, config, train_set
        self.device = torch.device(config.device)
        self.window_frames = model_config.frontend.n_frames(model_config.window_samples)
        self.n_crops = len(train_set.logmels) * config.crops_per_track
        self.steps_per_epoch = math.ceil(self.n_crops / config.batch_size)
        torch.manual_seed(config.seed)
        self.model = CRNN(model_config).to(self.device)
        self.optimizer = torch.optim.AdamW(
            [p for n, p in self.model.named_parameters() if not n.startswith("frontend")],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _schedule(config, self.steps_per_epoch))
        self.rng = np.random.default_rng(config.seed)

    def resume_from(self, path: Path) -> LoopState:
        saved = restore_last(path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, rng=self.rng,
                             config=self.config, n_tracks=len(self.train_set.logmels), device=self.device)
        return LoopState.from_dict(saved)

    def write_last(self, out_dir: Path, state: LoopState, record: dict) -> None:
        save_last(out_dir, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, rng=self.rng,
                  loop=state.to_dict(), run=record)

    def _batch(self, idx: np.ndarray) -> tuple[torch.Tensor, BatchTargets]:
        """One step's augmented crops of the tracks ``idx`` and their targets, mixed up where ``mixup_alpha`` > 0."""
        data, config = self.train_set, self.config
        crops, tags, features = training_batch(data, idx, self.window_frames, self.rng, config)
        genre = data.genre[idx]
        taste, moods = data.taste[idx], data.moods[idx]
        genre_soft = None
        if config.mixup_alpha > 0:
            onehot = np.eye(len(self.model_config.labels), dtype=np.float32)[np.maximum(genre, 0)]
            onehot[genre < 0] = np.nan
            crops, genre_soft, taste, moods, tags, features = mixup(
                [crops, onehot, taste, moods, tags, features], self.rng, alpha=config.mixup_alpha)

        def tensor(x):
            return None if x is None else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)

        targets = BatchTargets(genre=torch.from_numpy(genre).to(self.device), taste=tensor(taste), moods=tensor(moods),
                               tags=tensor(tags), features=tensor(features), genre_soft=tensor(genre_soft))
        return tensor(crops), targets

    def train_epoch(self, on_batch: Callable[[int, int], None] | None) -> float:
        """``crops_per_track`` crops of every training track in a random order, one step per batch; the mean loss."""
        config = self.config
        self.model.train()
        tracks = np.repeat(np.arange(len(self.train_set.logmels)), config.crops_per_track)
        track_idx = tracks[self.rng.permutation(self.n_crops)]
        losses = []
        for step in range(self.steps_per_epoch):
            crops, targets = self._batch(track_idx[step * config.batch_size : (step + 1) * config.batch_size])
            loss = multitask_loss(self.model.forward_logmel(crops), targets, config)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            losses.append(loss.item())
            if on_batch:
                on_batch(step + 1, self.steps_per_epoch)
        return float(np.mean(losses))

    def model_to_score(self, state: LoopState) -> CRNN:
        """The model this epoch is judged and kept by: the trained one, except at the last epoch of a run with
        ``average_epochs``, where it is the average (which ``state`` accumulates over the averaged epochs)."""
        config = self.config
        if not config.average_epochs or state.epoch < config.epochs - config.average_epochs:
            return self.model
        state.average = update_average(state.average, self.model, state.averaged)
        state.averaged += 1
        if state.epoch + 1 == config.epochs:  # the last epoch: from here on the average is the model
            return averaged_model(self.model_config, state.average, self.train_set, config, self.device)
        return self.model


def train(
    model_config: ModelConfig,
    config: TrainConfig,
    train_set: TrainingSet,
    valid_set: TrainingSet | None,
    out_dir: Path,
    *,
    resume: bool = False,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    extra_state: dict | None = None,
) -> list[EpochReport]:
    """Train, writing ``last.pt`` after every epoch and ``best.pt`` when the valid score improves.

    The valid score is clip accuracy plus half the crowd-taste Spearman correlation (where known): genre
    first, taste as a close second. Stops early after ``patience`` epochs without improvement.

    With no ``valid_set`` (a final run on train and valid together, its recipe chosen on valid before) every
    epoch counts as an improvement: it runs all ``epochs`` and ``best.pt`` is the last, fully annealed one.
    With ``average_epochs`` N, the last epoch's model is the mean of the weights after each of the last N
    epochs (SWA): the epoch-to-epoch swings of a small, noisy valid set's decisions average out. The average
    is then the model (``best.pt``) whatever its valid score, and early stopping is off, since the window is
    the end of the schedule.

    Resuming checks that the run is the same one (the same training tracks and configuration; only
    ``checkpoint.RESUMABLE_CHANGES`` may differ), or it refuses.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(model_config, config, train_set)
    state = LoopState()
    last_path = out_dir / CHECKPOINT_LAST
    if resume and last_path.is_file():
        state = run.resume_from(last_path)
        log.info("resumed from %s at epoch %d", last_path, state.epoch)
    record = run_record(model_config, config, n_tracks=len(train_set.logmels), extra_state=extra_state)
    started = time.monotonic()
    patience = math.inf if config.average_epochs else config.patience
    while state.epoch < config.epochs and state.since_best < patience:
        if config.max_minutes is not None and (time.monotonic() - started) / 60 > config.max_minutes:
            log.info("stopping: the %.1f-minute budget is spent", config.max_minutes)
            break
        epoch_start = time.monotonic()
        train_loss = run.train_epoch(on_batch)
        scored = run.model_to_score(state)
        valid = NOT_VALIDATED if valid_set is None else validate(
            scored, valid_set, window_frames=run.window_frames, hop_frames=config.eval_hop_frames)
        improved = valid_set is None or scored is not run.model or valid.score > state.best_score
        report = EpochReport(
            epoch=state.epoch + 1, train_loss=train_loss, valid_accuracy=valid.accuracy,
            valid_taste_spearman=valid.taste_spearman, valid_mood_correlation=valid.mood_correlation,
            valid_score=valid.score, improved=improved, seconds=time.monotonic() - epoch_start,
        )
        state.record(report)
        if report.improved:
            save_best(out_dir, scored, epoch=state.epoch, metrics=asdict(report), run=record)
        run.write_last(out_dir, state, record)
        write_history(out_dir, [asdict(r) for r in state.history])
        if on_epoch:
            on_epoch(report)
    return state.history
