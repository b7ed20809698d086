"""Probe heads: the refitted heads compute exactly what the fitted probes do, and read the labels they fit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from streamtag.train.crnn import CRNN  # noqa: E402
from streamtag.train.probe_heads import HOP_FRAMES, refit_heads, window_features  # noqa: E402


def test_refitted_heads_fit_the_training_labels(tiny_sets):
    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    model = CRNN(config).eval()  # untrained: its random features still separate 8 tracks' windows
    artists = [f"artist-{i}" for i in range(len(train_set.logmels))]  # 8 tracks, one artist each: 4 inner folds
    chosen = refit_heads(model, train_set, artists)
    assert set(chosen) == {"genre_C", "moods_alpha", "taste_alpha"}
    features = window_features(model, train_set.logmels)
    window_frames = config.frontend.n_frames(config.window_samples)
    with torch.no_grad():
        for logmel, track_features, genre in zip(train_set.logmels, features, train_set.genre, strict=True):
            crops = torch.from_numpy(np.stack([logmel[s : s + window_frames]
                                               for s in range(0, logmel.shape[0] - window_frames + 1, HOP_FRAMES)]))
            out = model.forward_logmel(crops)
            # the heads read the features window_features returns: the probe is the head
            direct = torch.from_numpy(track_features) @ model.genre_head.weight.T + model.genre_head.bias
            torch.testing.assert_close(out["genre_logits"], direct, rtol=1e-4, atol=1e-4)
            assert torch.softmax(out["genre_logits"], 1).mean(0).argmax().item() == genre
    moods = torch.sigmoid(model.forward_logmel(torch.from_numpy(train_set.logmels[0][:128][None]))["mood_logits"])
    assert ((0 < moods) & (moods < 1)).all()
