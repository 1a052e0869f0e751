from __future__ import annotations

import pytest
import torch

from mfx.config import ARCH_NAMES
from mfx.train.models import ARCHITECTURES, MatrixFactorization, build_model


class ReportMatrixFactorization(torch.nn.Module):
    """The report's class, verbatim."""

    def __init__(self, n, d, h=1, c=6):
        super().__init__()
        self.U = torch.nn.Embedding(n, h)
        self.V = torch.nn.Embedding(d, h)
        self.classifier = torch.nn.Linear(2 * h, c)

    def forward(self, X_batch):
        U = self.U.weight[X_batch[:, 0]]
        V = self.V.weight[X_batch[:, 1]]
        return self.classifier(torch.cat((U, V), 1))


def test_report_state_dict_loads_unchanged_and_computes_the_same():
    torch.manual_seed(0)
    report = ReportMatrixFactorization(8, 8)
    ours = MatrixFactorization(8, 8)
    ours.load_state_dict(report.state_dict())
    pairs = torch.tensor([[0, 0], [7, 7], [3, 5]])
    torch.testing.assert_close(ours(pairs), report(pairs))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("batch", [1, 2, 17])
def test_shapes_at_any_batch(arch, batch):
    model = build_model(arch, 5, 7, 3, 4)
    pairs = torch.stack([torch.arange(batch) % 5, torch.arange(batch) % 7], dim=1)
    assert model(pairs).shape == (batch, 4)


def test_folded_tables_are_exact():
    torch.manual_seed(1)
    model = MatrixFactorization(6, 9, h=4, c=5)
    rows, cols = model.folded_tables()
    pairs = torch.tensor([[0, 0], [5, 8], [2, 3]])
    torch.testing.assert_close(rows[pairs[:, 0]] + cols[pairs[:, 1]], model(pairs))


def test_registry_matches_config_names():
    assert set(ARCH_NAMES) == set(ARCHITECTURES)
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        build_model("nope", 1, 1, 1, 2)


def test_ordinal_probabilities_are_a_distribution():
    from mfx.train.models import OrdinalProduct

    torch.manual_seed(0)
    model = OrdinalProduct(11, 13, h=4, c=6)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 2.0)
    pairs = torch.stack([torch.arange(50) % 11, torch.arange(50) % 13], dim=1)
    probabilities = torch.softmax(model(pairs), dim=1)
    assert bool((probabilities >= 0).all())
    torch.testing.assert_close(probabilities.sum(1), torch.ones(50))
    # log-probabilities as logits: softmax of the logits is exactly exp of the logits
    torch.testing.assert_close(probabilities, model(pairs).exp(), atol=1e-5, rtol=1e-4)
    cuts = model.cut_points()
    assert bool((cuts[1:] > cuts[:-1]).all())


def test_interaction_models_fit_what_concat_cannot():
    """Labels from the sign pattern of a rank-2 product: additive terms carry no signal."""
    from mfx.config import TrainConfig
    from mfx.synthetic import planted_interaction
    from mfx.train import train

    raw = planted_interaction()
    scores = {
        arch: train(raw, TrainConfig(arch=arch, dim=8, epochs=60, lr=0.02, patience=5)).metrics[
            "valid_accuracy"
        ]
        for arch in ("concat", "product", "ordinal")
    }
    assert scores["product"] >= 0.85
    assert scores["ordinal"] >= 0.85
    assert scores["concat"] <= 0.6
