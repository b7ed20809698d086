"""Stochastic weight averaging: the running mean of the weights over a run's last epochs, and the averaged
model with BatchNorm statistics measured anew."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamtag.train.config import TrainConfig
from streamtag.train.crnn import CRNN, ModelConfig
from streamtag.train.training_set import TrainingSet, training_batch


def update_average(average: dict | None, model: nn.Module, count: int) -> dict:
    """Running mean of the floating-point weights after ``count`` earlier epochs (stochastic weight averaging)."""
    current = {name: value.detach().clone() for name, value in model.state_dict().items()}
    if average is None:
        return current
    for name, value in current.items():
        if value.is_floating_point():
            average[name] += (value - average[name]) / (count + 1)
        else:
            average[name] = value
    return average


def averaged_model(model_config: ModelConfig, average: dict, train_set: TrainingSet, config: TrainConfig,
                   device: torch.device) -> CRNN:
    """The model with averaged weights and BatchNorm statistics measured anew on training crops.

    Averaged BatchNorm statistics belong to none of the averaged weights, so they are re-estimated as the
    plain mean over ``bn_batches`` augmented batches (momentum None), with a random stream of their own that
    leaves the training stream untouched.
    """
    model = CRNN(model_config).to(device)
    model.load_state_dict(average)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    rng = np.random.default_rng(config.seed + 1)
    window_frames = model_config.frontend.n_frames(model_config.window_samples)
    model.train()
    with torch.no_grad():
        for _ in range(config.bn_batches):
            idx = rng.integers(0, len(train_set.logmels), config.batch_size)
            crops, _, _ = training_batch(train_set, idx, window_frames, rng, config)
            model.forward_logmel(torch.from_numpy(crops).to(device))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()
