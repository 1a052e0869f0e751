from __future__ import annotations

import numpy as np
import pytest

from mfx import metrics


def test_hand_computed_confusion_and_scores():
    true = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 1])
    confusion = metrics.confusion_matrix(true, pred, 4)
    np.testing.assert_array_equal(
        confusion, [[1, 1, 0, 0], [1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    )
    assert metrics.accuracy(true, pred) == pytest.approx(3 / 6)
    scores = metrics.per_class(confusion)
    # Class 2 is never predicted, class 3 never appears: both score 0 and class 3 is left out.
    np.testing.assert_allclose(scores["precision"], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(scores["recall"], [0.5, 2 / 3, 0.0, 0.0])
    f1_class1 = 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)
    assert metrics.macro_f1(confusion) == pytest.approx((0.5 + f1_class1 + 0.0) / 3)


def test_log_loss_mae_rmse():
    probabilities = np.array([[0.5, 0.5], [0.1, 0.9]])
    assert metrics.log_loss(np.array([0, 1]), probabilities) == pytest.approx(
        -(np.log(0.5) + np.log(0.9)) / 2
    )
    assert metrics.mae([1, 2, 3], [1, 3, 5]) == pytest.approx(1.0)
    assert metrics.rmse([1, 2, 3], [1, 3, 5]) == pytest.approx(np.sqrt(5 / 3))
