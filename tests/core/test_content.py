"""The content head's arithmetic and its document, with numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamtag.core.content import ContentHead
from streamtag.core.scorer import Scores

WIDTHS = {"summary": 2, "embedding": 1, "tags": 0, "genre": 1, "moods": 0}


def head(**changes) -> dict:
    document = {
        "kind": "streamtag-content-head", "version": 1, "classes": ["music", "speech", "other"],
        "model_weights_sha256": "ab" * 32, "features": ["summary"],
        "mean": [1.0, 0.0], "scale": [2.0, 1.0],
        "weights": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "bias": [0.0, 0.0, math.log(2.0)],
    }
    return {**document, **changes}


def test_probabilities_by_hand():
    content = ContentHead.from_dict(head(), widths=WIDTHS)
    scores = Scores(genre=np.ones((2, 1)), taste=np.zeros(2), moods=np.zeros((2, 0)), embedding=np.zeros((2, 1)),
                    tags=np.zeros((2, 0)), summary=np.array([[1.0, 0.0], [3.0, math.log(3.0)]]))
    # row 0: standardised (0, 0) -> logits (0, 0, ln 2) -> e = (1, 1, 2) / 4
    # row 1: standardised (1, ln 3) -> logits (1, ln 3, ln 2) -> e = (e, 3, 2) / (e + 5)
    expected = np.array([[1.0, 1.0, 2.0], [math.e, 3.0, 2.0]]) / np.array([[4.0], [math.e + 5.0]])
    np.testing.assert_allclose(content.probabilities(scores), expected, rtol=1e-6)
    again = ContentHead.from_dict(content.to_dict({"C": 0.1}), widths=WIDTHS)
    np.testing.assert_array_equal(again.probabilities(scores), content.probabilities(scores))


@pytest.mark.parametrize("change, reason", [
    ({"kind": "something-else"}, "not a streamtag content head"),
    ({"version": 2}, "version 2"),
    ({"features": ["loudness"]}, "unknown features"),
    ({"features": ["summary", "embedding"]}, "do not fit the model's 3 features"),
    ({"scale": [0.0, 1.0]}, "scale that is not positive"),
    ({"bias": [0.0, float("nan"), 0.0]}, "non-finite"),
])
def test_a_head_that_does_not_fit_is_refused(change, reason):
    with pytest.raises(ValueError, match=reason):
        ContentHead.from_dict(head(**change), widths=WIDTHS)
