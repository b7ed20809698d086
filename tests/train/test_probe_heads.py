"""Probe heads: the refitted heads compute exactly what the fitted probes do, read the features they were fitted
on (genre and moods the CNN's summary, taste the embedding), fit the labels, and survive a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from streamtag.train.config import ModelConfig  # noqa: E402
from streamtag.train.crnn import CRNN  # noqa: E402
from streamtag.train.probe_heads import HOP_FRAMES, refit_checkpoint, refit_heads, window_features  # noqa: E402


def test_refitted_heads_fit_the_training_labels(tiny_sets):
    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    model = CRNN(config).eval()  # untrained: its random features still separate 8 tracks' windows
    artists = [f"artist-{i}" for i in range(len(train_set.logmels))]  # 8 tracks, one artist each: 4 inner folds
    chosen = refit_heads(model, train_set, artists)
    assert set(chosen) == {"genre_C", "moods_alpha", "taste_alpha"}
    assert model.config.summary_heads == ("genre", "moods")
    assert model.genre_head.in_features == model.mood_head.in_features == 2 * config.channels[-1]
    assert model.taste_head.in_features == config.embedding_dim
    features = window_features(model, train_set.logmels)
    window_frames = config.frontend.n_frames(config.window_samples)
    with torch.no_grad():
        for logmel, summary, embedding, genre in zip(train_set.logmels, features["summary"], features["embedding"],
                                                     train_set.genre, strict=True):
            crops = torch.from_numpy(np.stack([logmel[s : s + window_frames]
                                               for s in range(0, logmel.shape[0] - window_frames + 1, HOP_FRAMES)]))
            out = model.forward_logmel(crops)
            # the heads read the features window_features returns: the probe is the head
            direct = torch.from_numpy(summary) @ model.genre_head.weight.T + model.genre_head.bias
            torch.testing.assert_close(out["genre_logits"], direct, rtol=1e-4, atol=1e-4)
            taste = torch.from_numpy(embedding) @ model.taste_head.weight.T + model.taste_head.bias
            torch.testing.assert_close(out["taste_logit"], taste[:, 0], rtol=1e-4, atol=1e-4)
            assert torch.softmax(out["genre_logits"], 1).mean(0).argmax().item() == genre
    moods = torch.sigmoid(model.forward_logmel(torch.from_numpy(train_set.logmels[0][:128][None]))["mood_logits"])
    assert ((0 < moods) & (moods < 1)).all()


def test_a_refitted_checkpoint_loads_with_heads_of_its_own_shape(tiny_sets, tmp_path):
    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    path = tmp_path / "best.pt"
    torch.save({"model_config": config.to_dict(), "model": CRNN(config).state_dict()}, path)
    artists = [f"artist-{i}" for i in range(len(train_set.logmels))]
    first = refit_checkpoint(path, train_set, artists)
    state = torch.load(path, weights_only=False)
    loaded = CRNN(ModelConfig.from_dict(state["model_config"]))
    loaded.load_state_dict(state["model"])  # the heads' shapes follow the config the checkpoint carries
    assert loaded.config.summary_heads == ("genre", "moods")
    assert refit_checkpoint(path, train_set, artists) == first  # the features did not move: the same probes
