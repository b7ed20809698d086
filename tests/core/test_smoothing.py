"""Smoothing, hysteresis and the silence gate on made-up score sequences, with numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamtag.core.smoothing import Smoother, SmoothingConfig, TopChange

LOUD_DBFS = -20.0
QUIET_DBFS = -70.0
HALF_LIFE_ONE_HOP_S = 0.5 / math.log(2)  # at a 0.5 s hop this time constant gives alpha = 1/2 exactly


def feed(smoother: Smoother, genre, *, level_dbfs: float = LOUD_DBFS, taste: float = 0.5, tags=()):
    return smoother.update(
        genre=np.array(genre), taste=taste, moods=np.array([taste]), tags=np.array(tags), level_dbfs=level_dbfs
    )


def test_alpha_follows_the_time_constant():
    # 1 - exp(-0.5 / 2) = 1 - 0.7788 = 0.2212
    assert SmoothingConfig(hop_s=0.5, time_constant_s=2.0).alpha == pytest.approx(0.221199, abs=1e-6)
    assert SmoothingConfig(hop_s=0.5, time_constant_s=HALF_LIFE_ONE_HOP_S).alpha == pytest.approx(0.5)
    assert SmoothingConfig(hop_s=0.5, time_constant_s=0).alpha == 1.0
    # the same time constant at a finer hop: 1 - exp(-0.25 / 2) = 0.1175
    assert SmoothingConfig(hop_s=0.25, time_constant_s=2.0).alpha == pytest.approx(0.117503, abs=1e-6)


def test_ema_values_by_hand():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=HALF_LIFE_ONE_HOP_S, switch_margin=0.0, confirm_s=0))
    out = feed(s, [1.0, 0.0], taste=1.0)  # the first window is taken as it is
    np.testing.assert_allclose(out.genre, [1.0, 0.0])
    assert out.taste == 1.0
    out = feed(s, [0.0, 1.0], taste=0.0)  # halfway: [0.5, 0.5]
    np.testing.assert_allclose(out.genre, [0.5, 0.5])
    assert out.taste == pytest.approx(0.5)
    np.testing.assert_allclose(out.moods, [0.5])
    out = feed(s, [0.0, 1.0], taste=0.0)  # [0.25, 0.75]
    np.testing.assert_allclose(out.genre, [0.25, 0.75])
    assert out.taste == pytest.approx(0.25)


def test_tags_take_the_same_ema_and_start_fresh_after_silence():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=HALF_LIFE_ONE_HOP_S, silence_enter_s=0.5))
    np.testing.assert_allclose(feed(s, [1.0, 0.0], tags=[0.8, 0.0, 0.4]).tags, [0.8, 0.0, 0.4])
    np.testing.assert_allclose(feed(s, [1.0, 0.0], tags=[0.0, 1.0, 0.4]).tags, [0.4, 0.5, 0.4])  # halfway
    np.testing.assert_allclose(feed(s, [1.0, 0.0], tags=[0.0, 1.0, 0.0]).tags, [0.2, 0.75, 0.2])
    assert feed(s, [1.0, 0.0], tags=[0.0, 1.0, 0.0], level_dbfs=QUIET_DBFS).tags is None
    np.testing.assert_allclose(feed(s, [1.0, 0.0], tags=[0.6, 0.1, 0.3]).tags, [0.6, 0.1, 0.3])


def test_a_model_without_tags_smooths_an_empty_vector():
    s = Smoother(SmoothingConfig(hop_s=0.5))
    feed(s, [1.0, 0.0])
    assert feed(s, [0.0, 1.0]).tags.shape == (0,)


def test_step_response_reaches_63_percent_after_one_time_constant():
    cfg = SmoothingConfig(hop_s=0.1, time_constant_s=2.0)
    s = Smoother(cfg)
    feed(s, [1.0, 0.0])
    for _ in range(20):  # 20 hops of 0.1 s = one time constant
        out = feed(s, [0.0, 1.0])
    assert out.genre[1] == pytest.approx(1 - math.exp(-1), abs=1e-9)


def test_top_switches_only_after_margin_held_for_confirm_time():
    # alpha 1/2, margin 0.05, confirm 1 s = 2 hops of 0.5 s
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=HALF_LIFE_ONE_HOP_S, switch_margin=0.05, confirm_s=1.0))
    out = feed(s, [0.6, 0.4])
    assert out.top == 0 and out.change == TopChange(previous=None, current=0)
    out = feed(s, [0.4, 0.6])  # [0.5, 0.5]: no lead
    assert out.top == 0 and out.change is None
    out = feed(s, [0.4, 0.6])  # [0.45, 0.55]: leads by 0.10, first hop
    assert out.top == 0 and out.change is None
    out = feed(s, [0.4, 0.6])  # [0.425, 0.575]: second hop of the lead -> switch
    assert out.top == 1 and out.change == TopChange(previous=0, current=1)
    out = feed(s, [0.4, 0.6])
    assert out.top == 1 and out.change is None


def test_near_equal_labels_do_not_flicker():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0, switch_margin=0.05, confirm_s=0.5))
    tops, changes = [], 0
    for i in range(40):
        out = feed(s, [0.52, 0.48] if i % 2 == 0 else [0.48, 0.52])  # raw argmax flips every hop
        tops.append(out.top)
        changes += out.change is not None
    assert set(tops) == {0}
    assert changes == 1  # only the first appearance


def test_a_challenger_interrupted_starts_counting_again():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0, switch_margin=0.05, confirm_s=1.0))
    feed(s, [0.8, 0.1, 0.1])
    assert feed(s, [0.2, 0.7, 0.1]).top == 0  # label 1 leads, hop 1
    assert feed(s, [0.2, 0.1, 0.7]).top == 0  # label 2 leads instead: its hop 1
    assert feed(s, [0.2, 0.1, 0.7]).top == 2  # label 2, hop 2


def test_silence_gate_needs_consecutive_quiet_windows():
    s = Smoother(SmoothingConfig(hop_s=0.5, silence_dbfs=-55.0, silence_enter_s=1.0))  # 2 hops
    assert not feed(s, [0.9, 0.1]).silent
    out = feed(s, [0.9, 0.1], level_dbfs=QUIET_DBFS)  # one quiet window inside music: still tagged
    assert not out.silent and out.top == 0
    assert not feed(s, [0.9, 0.1]).silent
    assert not feed(s, [0.9, 0.1], level_dbfs=QUIET_DBFS).silent
    out = feed(s, [0.9, 0.1], level_dbfs=QUIET_DBFS)
    assert out.silent
    assert out.top is None and out.genre is None and out.moods is None and out.tags is None and out.taste is None
    assert out.change == TopChange(previous=0, current=None)
    out = feed(s, [0.9, 0.1], level_dbfs=QUIET_DBFS)
    assert out.silent and out.change is None


def test_after_silence_the_music_starts_fresh():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=2.0, silence_enter_s=0.5))
    for _ in range(10):
        feed(s, [1.0, 0.0])
    assert feed(s, [1.0, 0.0], level_dbfs=QUIET_DBFS).silent
    out = feed(s, [0.0, 1.0])  # no memory of the genre before the pause
    assert not out.silent
    np.testing.assert_allclose(out.genre, [0.0, 1.0])
    assert out.change == TopChange(previous=None, current=1)


def test_level_exactly_at_the_threshold_is_not_quiet():
    s = Smoother(SmoothingConfig(silence_dbfs=-55.0, silence_enter_s=0.5))
    assert not feed(s, [1.0, 0.0], level_dbfs=-55.0).silent


def test_config_is_keyword_only_and_validated():
    with pytest.raises(TypeError):
        SmoothingConfig(0.5)  # type: ignore[misc]
    with pytest.raises(ValueError):
        SmoothingConfig(hop_s=0)
    assert SmoothingConfig(hop_s=0.5, confirm_s=1.0).confirm_hops == 2
    assert SmoothingConfig(hop_s=0.3, confirm_s=1.0).confirm_hops == 4
    assert SmoothingConfig(hop_s=0.5, silence_enter_s=0).silence_hops == 1


# -- what is playing ---------------------------------------------------------------------------------------------
MUSIC_CONTENT, SPEECH_CONTENT, OTHER_CONTENT = [0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.1, 0.1, 0.8]


def feed_content(smoother: Smoother, content, genre=(0.9, 0.1), *, level_dbfs: float = LOUD_DBFS):
    return smoother.update(genre=np.array(genre), taste=0.5, moods=np.array([0.5]), tags=np.array([]),
                           level_dbfs=level_dbfs, content=None if content is None else np.array(content))


def test_digital_silence_is_silent_from_its_first_window():
    """It used to read "electronic 0.62" for its first second, until the quiet-for-1-s gate closed."""
    out = feed(Smoother(SmoothingConfig(hop_s=0.5)), [0.38, 0.62], level_dbfs=-120.0)
    assert out.silent and out.top is None and out.state == "silence"
    quiet = feed(Smoother(SmoothingConfig(hop_s=0.5)), [0.38, 0.62], level_dbfs=QUIET_DBFS)
    assert not quiet.silent and quiet.state == "music"  # merely quiet: a rest in music, as before


def test_speech_from_the_start_shows_no_genre_at_once_and_music_takes_over_after_the_confirm_time():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0, content_time_constant_s=0, state_confirm_s=1.0))
    first = feed_content(s, SPEECH_CONTENT)
    assert (first.state, first.top, first.change) == ("speech", None, None)  # decided at once: nothing to undo
    np.testing.assert_allclose(first.genre, [0.9, 0.1])  # the scores are still given
    assert feed_content(s, MUSIC_CONTENT).state == "speech"  # one hop of music: not yet (2 hops confirm)
    second = feed_content(s, MUSIC_CONTENT)
    assert (second.state, second.top, second.change) == ("music", 0, TopChange(previous=None, current=0))
    assert feed_content(s, SPEECH_CONTENT).state == "music"  # one window of speech inside music is not speech
    assert feed_content(s, MUSIC_CONTENT).state == "music"
    feed_content(s, SPEECH_CONTENT)
    gone = feed_content(s, SPEECH_CONTENT)
    assert (gone.state, gone.top, gone.change) == ("speech", None, TopChange(previous=0, current=None))


def test_other_sounds_and_genres_that_do_not_fit_are_unsure():
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0, content_time_constant_s=0))
    assert feed_content(s, OTHER_CONTENT).state == "unsure"  # a whale: not music, not speech
    flat = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0))
    out = feed_content(flat, None, genre=(0.3, 0.3, 0.25, 0.15))  # music, but no genre stands out (under 0.4)
    assert (out.state, out.top, out.content) == ("unsure", None, None)
    assert feed_content(Smoother(SmoothingConfig(hop_s=0.5)), None, genre=(0.7, 0.3)).state == "music"


def test_the_state_before_a_silence_holds_after_it_until_another_is_confirmed():
    """The first windows after a pause are mostly its zeros: they must not decide what plays."""
    s = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0, content_time_constant_s=0, silence_enter_s=0.5,
                                 state_confirm_s=1.0))
    assert feed_content(s, SPEECH_CONTENT).state == "speech"
    assert feed_content(s, SPEECH_CONTENT, level_dbfs=QUIET_DBFS).state == "silence"
    after = feed_content(s, OTHER_CONTENT)  # a half-silent window after the pause
    assert (after.state, after.top) == ("speech", None)
    feed_content(s, MUSIC_CONTENT)
    back = feed_content(s, MUSIC_CONTENT)
    assert (back.state, back.top) == ("music", 0)
    music = Smoother(SmoothingConfig(hop_s=0.5, time_constant_s=0, content_time_constant_s=0, silence_enter_s=0.5))
    feed_content(music, MUSIC_CONTENT)
    feed_content(music, MUSIC_CONTENT, level_dbfs=QUIET_DBFS)
    resumed = feed_content(music, OTHER_CONTENT)
    assert (resumed.state, resumed.top, resumed.change) == ("music", 0, TopChange(previous=None, current=0))


def test_what_plays_is_smoothed_more_slowly_than_the_genres():
    # 1 - exp(-0.5 / 6) = 0.0800: a window of speech after music moves P(speech) by 8 % of the way
    config = SmoothingConfig(hop_s=0.5)
    assert config.content_alpha == pytest.approx(0.079955, abs=1e-6) and config.alpha == pytest.approx(0.221199, abs=1e-6)
    s = Smoother(config)
    feed_content(s, MUSIC_CONTENT)
    out = feed_content(s, SPEECH_CONTENT)
    np.testing.assert_allclose(out.content, np.array(MUSIC_CONTENT) + 0.079955 * (np.array(SPEECH_CONTENT) - MUSIC_CONTENT),
                               atol=1e-6)
    # P(speech) = 0.85 - 0.8 * 0.92^n passes 0.5 at the 10th window of speech, and 4 hops (2 s) confirm it:
    # shown at the 13th, 6.5 s in.
    windows = 1
    while (out := feed_content(s, SPEECH_CONTENT)).state != "speech":
        windows += 1
    assert windows + 1 == 13


def test_a_whole_file_is_judged_by_the_class_its_means_favour():
    from streamtag.core.smoothing import clip_state_of

    config = SmoothingConfig()
    assert clip_state_of(0.85, np.array([0.40, 0.08, 0.52]), config) == "unsure"  # a dog: other outweighs music
    assert clip_state_of(0.77, np.array([0.59, 0.37, 0.04]), config) == "music"  # a ragtime: music, however close
    assert clip_state_of(0.6, np.array([0.02, 0.93, 0.05]), config) == "speech"
    assert clip_state_of(0.35, np.array([0.9, 0.05, 0.05]), config) == "unsure"  # music, but no genre fits
    assert clip_state_of(0.7, None, config) == "music"  # a model without a content head
