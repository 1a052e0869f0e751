from __future__ import annotations

import json

import numpy as np
import pytest

from mfx.evaluation import JSON_SCHEMA_VERSION, evaluate
from mfx.labels import Classes

# Classes 0..3: class 2 is never predicted, class 3 never appears.
TRUE = np.array([0, 0, 1, 1, 1, 2])
PREDICTED = np.array([0, 1, 1, 1, 0, 1])


def _probabilities(predicted, n_classes, top=0.7):
    rest = (1 - top) / (n_classes - 1)
    out = np.full((predicted.size, n_classes), rest)
    out[np.arange(predicted.size), predicted] = top
    return out


def test_figures_against_hand_computed_values():
    classes = Classes.from_list([0, 1, 2, 3])
    result = evaluate(TRUE, _probabilities(PREDICTED, 4), classes)
    assert result.accuracy == pytest.approx(0.5)
    assert result.log_loss == pytest.approx(-(3 * np.log(0.7) + 3 * np.log(0.1)) / 6)
    # Predicted labels 0,1,1,1,0,1 vs 0,0,1,1,1,2: |errors| 0,1,0,0,1,1.
    assert result.mae_label == pytest.approx(0.5)
    assert result.rmse_label == pytest.approx(np.sqrt(0.5))
    expected = _probabilities(PREDICTED, 4) @ np.arange(4)
    assert result.mae_expected == pytest.approx(np.mean(np.abs(TRUE - expected)))
    assert result.per_class["support"].tolist() == [2, 3, 1, 0]
    assert result.per_class["precision"][2] == 0.0  # never predicted
    assert result.macro_f1 == pytest.approx((0.5 + 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) / 3)


def test_json_schema():
    classes = Classes.from_list([0.5, 1, 1.5, 2])
    doc = evaluate(TRUE, _probabilities(PREDICTED, 4), classes, model="m", data="d").to_dict()
    round_trip = json.loads(json.dumps(doc))
    assert round_trip["schema"] == JSON_SCHEMA_VERSION
    assert set(round_trip) == {
        "schema",
        "model",
        "data",
        "n_pairs",
        "n_unknown",
        "unknown_policy",
        "classes",
        "accuracy",
        "macro_f1",
        "log_loss",
        "per_class",
        "confusion",
        "mae_label",
        "rmse_label",
        "mae_expected",
        "rmse_expected",
    }
    assert round_trip["classes"] == [0.5, 1, 1.5, 2]
    assert round_trip["per_class"][0] == {
        "label": 0.5,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }
    assert round_trip["confusion"][3] == [0, 0, 0, 0]
    assert round_trip["n_pairs"] == 6


def test_text_labels_have_no_rating_errors():
    classes = Classes.from_list(["dislike", "like", "meh", "wow"])
    result = evaluate(TRUE, _probabilities(PREDICTED, 4), classes)
    assert result.mae_label is None and result.to_dict()["rmse_expected"] is None
    text = result.format_text()
    assert "MAE" not in text and "dislike" in text


def test_text_report_lays_out_the_confusion_matrix():
    result = evaluate(TRUE, _probabilities(PREDICTED, 4), Classes.from_list([0, 1, 2, 3]))
    text = result.format_text()
    assert "accuracy: 0.5000 (3 of 6 correct)" in text
    assert "rows: true label, columns: predicted label" in text
    lines = text.splitlines()
    row_of_1 = next(line for line in lines if line.strip().startswith("1 |"))
    assert row_of_1.split("|")[1].split() == ["1", "2", "0", "0"]


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from mfx import plots

    result = evaluate(TRUE, _probabilities(PREDICTED, 4), Classes.from_list([0, 1, 2, 3]))
    paths = [
        plots.confusion_heatmap(result.confusion, [0, 1, 2, 3], tmp_path / "c.png"),
        plots.true_vs_predicted(
            np.random.default_rng(0).integers(0, 4, 500),
            np.random.default_rng(1).integers(0, 4, 500),
            tmp_path / "t.png",
            [0, 1, 2, 3],
        ),
        plots.loss_curve({"train_loss": [2.0, 1.5], "valid_loss": [2.1, 1.8]}, tmp_path / "l.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "l.png", "t.png"]
