"""Probe heads: the refitted heads compute exactly what the fitted probes do, read the features the inner
cross-validation chose for them (genre the CNN's summary, moods the summary, its bands or the bands beside the
GRU's pooled output), crowd taste reads the genre probabilities through the genres' like rates, the heads fit
the labels, and survive a checkpoint; checkpoints from before 2.2.0 still load."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from streamtag.train.config import ModelConfig  # noqa: E402
from streamtag.train.crnn import CRNN, sources_of  # noqa: E402
from streamtag.train.probe_heads import HOP_FRAMES, refit_checkpoint, refit_heads, window_features  # noqa: E402


def _read(features: dict, head_input: str, track: int) -> torch.Tensor:
    """What a head reading ``head_input`` sees for each window of ``track``, from window_features' output."""
    return torch.from_numpy(np.concatenate([features[source][track] for source in sources_of(head_input)], axis=1))


def test_refitted_heads_fit_the_training_labels(tiny_sets):
    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    model = CRNN(config).eval()  # untrained: its random features still separate 8 tracks' windows
    artists = [f"artist-{i}" for i in range(len(train_set.logmels))]  # 8 tracks, one artist each: 4 inner folds
    chosen = refit_heads(model, train_set, artists)
    assert {"genre_C", "moods_alpha"} <= set(chosen)
    inputs = dict(model.config.head_inputs)
    assert inputs["genre"] == "summary" and inputs["moods"] in ("summary", "bands", "bands+pooled")
    assert inputs["taste"] == chosen["taste_input"] == "genre"
    # the taste head holds each genre's mean like rate over the training tracks, and no bias
    like_rates = [np.mean([float(r) for g, r in zip(train_set.genre, train_set.taste, strict=True) if g == k]) for k in range(4)]
    assert chosen["taste_genre_rates"] == pytest.approx(dict(zip(config.labels, like_rates, strict=True)), abs=5e-5)
    np.testing.assert_allclose(model.taste_head.weight.detach().numpy()[0], like_rates, rtol=1e-6)
    assert model.taste_head.bias.item() == 0
    widths = {"summary": 2 * config.channels[-1], "bands": 2 * config.channels[-1] * config.frontend.n_mels // 32,
              "bands+pooled": 2 * config.channels[-1] * config.frontend.n_mels // 32 + 4 * config.gru_hidden}
    assert model.genre_head.in_features == widths[inputs["genre"]]
    assert model.mood_head.in_features == widths[inputs["moods"]]
    assert model.taste_head.in_features == len(config.labels)
    features = window_features(model, train_set.logmels)
    window_frames = config.frontend.n_frames(config.window_samples)
    with torch.no_grad():
        for i, (logmel, genre) in enumerate(zip(train_set.logmels, train_set.genre, strict=True)):
            crops = torch.from_numpy(np.stack([logmel[s : s + window_frames]
                                               for s in range(0, logmel.shape[0] - window_frames + 1, HOP_FRAMES)]))
            out = model.forward_logmel(crops)
            # the heads read the features window_features returns: the probe is the head
            direct = _read(features, inputs["genre"], i) @ model.genre_head.weight.T + model.genre_head.bias
            torch.testing.assert_close(out["genre_logits"], direct, rtol=1e-4, atol=1e-4)
            moods = _read(features, inputs["moods"], i) @ model.mood_head.weight.T + model.mood_head.bias
            torch.testing.assert_close(out["mood_logits"], moods, rtol=1e-4, atol=1e-4)
            # a window's taste: the like rates weighted by its genre probabilities
            taste = torch.softmax(direct, 1).double().numpy() @ np.array(like_rates)
            np.testing.assert_allclose(torch.sigmoid(out["taste_logit"]).numpy(), taste, rtol=1e-4)
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
    assert loaded.config.head_inputs == state["model_config"]["head_inputs"]
    assert refit_checkpoint(path, train_set, artists) == first  # the features did not move: the same probes


def test_bands_are_the_summary_per_frequency_band(tiny_sets):
    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    model = CRNN(config).eval()
    features = window_features(model, train_set.logmels[:1])
    bands = features["bands"][0].reshape(len(features["bands"][0]), 2, config.channels[-1], -1)  # (W, mean|max, C, F')
    # the per-band time means average to the summary's time mean; the maxima bound its maximum from above
    np.testing.assert_allclose(bands[:, 0].mean(axis=2), features["summary"][0][:, :config.channels[-1]], rtol=1e-5, atol=1e-6)
    assert (bands[:, 1].mean(axis=2) >= features["summary"][0][:, config.channels[-1]:] - 1e-6).all()


def test_a_head_reads_the_bands_and_the_pooled_gru_side_by_side(tiny_sets):
    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    model = CRNN(replace(config, head_inputs=(("moods", "bands+pooled"),))).eval()
    features = window_features(model, train_set.logmels[:1])
    assert features["pooled"][0].shape[1] == 4 * config.gru_hidden
    assert model.mood_head.in_features == features["bands"][0].shape[1] + features["pooled"][0].shape[1]
    window_frames = config.frontend.n_frames(config.window_samples)
    with torch.no_grad():
        out = model.forward_logmel(torch.from_numpy(train_set.logmels[0][:window_frames][None]))
    # the bands first, then the pooled GRU: the order the probe's weights were fitted in
    expected = _read(features, "bands+pooled", 0)[:1] @ model.mood_head.weight.T + model.mood_head.bias
    torch.testing.assert_close(out["mood_logits"], expected, rtol=1e-4, atol=1e-4)


def test_a_checkpoint_from_before_head_inputs_loads():
    config = ModelConfig(labels=("a", "b"), channels=(4, 4, 4, 8), gru_hidden=4, embedding_dim=4)
    old = config.to_dict()
    del old["head_inputs"]
    old["summary_heads"] = ["genre", "moods"]  # how 2.1.0's checkpoint says what its heads read
    loaded = ModelConfig.from_dict(old)
    assert loaded.input_of("genre") == loaded.input_of("moods") == "summary"
    assert loaded.input_of("taste") == "embedding"
    assert CRNN(loaded).genre_head.in_features == 2 * 8


def test_each_mood_gets_the_alpha_that_scores_it_best(tiny_sets):
    from streamtag.train.probe_heads import HEADS, _choose, _logit

    config, train_set, _ = tiny_sets
    torch.manual_seed(0)
    features = window_features(CRNN(config).eval(), train_set.logmels)
    z = np.concatenate(features["summary"])
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-6)
    windows_of = np.concatenate([np.full(len(f), j) for j, f in enumerate(features["summary"])])
    groups = np.array([f"artist-{j}" for j in windows_of])
    # a wide grid: on eight tracks of an untrained network the moods part ways within it
    moods = replace(HEADS["moods"], inputs=("summary",), grid=(1.0, 100.0, 1e4, 1e6))
    source, alphas, score = _choose(moods, {"summary": z}, train_set.moods, _logit(train_set.moods[windows_of]),
                                    windows_of, groups)
    assert source == "summary" and len(alphas) == len(config.mood_names)
    # the same alpha each mood would get were it the head's only output
    alone, bests = replace(moods, per_output=False), []
    for j in range(len(config.mood_names)):
        _, alpha, best = _choose(alone, {"summary": z}, train_set.moods[:, j : j + 1],
                                 _logit(train_set.moods[windows_of][:, j : j + 1]), windows_of, groups)
        assert alphas[j] == alpha
        bests.append(best[0])
    assert score[0] == pytest.approx(np.mean(bests), rel=1e-5)  # the head's score: the mean of its moods' best
    assert len(set(alphas)) > 1  # nine moods of eight real tracks do not all want one shrinkage
