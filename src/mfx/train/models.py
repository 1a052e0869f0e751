"""Networks that map (row index, column index) pairs to class logits.

Every architecture takes ``pairs``, an int64 tensor ``[batch, 2]``, and returns logits
``[batch, classes]``. The training wrapper (:mod:`mfx.train.trainer`) owns optimisation and data;
these modules only compute. Architectures are registered in :data:`ARCHITECTURES` by name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class MatrixFactorization(nn.Module):
    """The report's model: row and column embeddings, concatenated, then a linear classifier.

    Parameter names (``U``, ``V``, ``classifier``) match the report's class, so a
    ``state_dict`` saved from it loads unchanged.

    Parameters
    ----------
    n, d
        Number of rows and columns.
    h
        Embedding size.
    c
        Number of classes.
    """

    def __init__(self, n: int, d: int, h: int = 1, c: int = 6) -> None:
        super().__init__()
        self.U = nn.Embedding(n, h)
        self.V = nn.Embedding(d, h)
        self.classifier = nn.Linear(2 * h, c)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        # self.U(idx) is self.U.weight[idx]; going through the module lets training switch the
        # tables to sparse gradients.
        row_factors = self.U(pairs[:, 0])
        col_factors = self.V(pairs[:, 1])
        return self.classifier(torch.cat((row_factors, col_factors), 1))

    def folded_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row and per-column logit tables ``P``, ``Q`` with ``logits = P[row] + Q[col]``.

        ``P = U @ W_u.T`` and ``Q = V @ W_v.T + b``, where ``W = [W_u | W_v]`` is split into the
        halves that multiply the row and the column embedding.
        """
        h = self.U.weight.shape[1]
        weight, bias = self.classifier.weight, self.classifier.bias
        rows = self.U.weight @ weight[:, :h].T
        cols = self.V.weight @ weight[:, h:].T + bias
        return rows, cols


class BiasedProduct(nn.Module):
    """An interaction model: ``logits = W (u_row * v_col) + b + P[row] + Q[col]``.

    The element-wise product of row and column factors (as in GMF) lets a row's taste meet a
    column's traits, which the additive ``concat`` model cannot express; ``P`` and ``Q`` are
    per-class row and column biases.
    """

    def __init__(self, n: int, d: int, h: int = 32, c: int = 6) -> None:
        super().__init__()
        self.U = nn.Embedding(n, h)
        self.V = nn.Embedding(d, h)
        self.row_bias = nn.Embedding(n, c)
        self.col_bias = nn.Embedding(d, c)
        self.classifier = nn.Linear(h, c)
        for table in (self.U, self.V):
            nn.init.normal_(table.weight, std=0.1)
        for table in (self.row_bias, self.col_bias):
            nn.init.zeros_(table.weight)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.forward_with_penalty(pairs)[0]

    def forward_with_penalty(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the mean squared norm of the looked-up rows (per-example L2)."""
        rows, cols = pairs[:, 0], pairs[:, 1]
        u, v = self.U(rows), self.V(cols)
        row_bias, col_bias = self.row_bias(rows), self.col_bias(cols)
        logits = self.classifier(u * v) + row_bias + col_bias
        penalty = (
            u.square().sum(1)
            + v.square().sum(1)
            + row_bias.square().sum(1)
            + col_bias.square().sum(1)
        ).mean()
        return logits, penalty


class OrdinalProduct(nn.Module):
    """Ordered labels: a cumulative-logit head on a biased dot-product score.

    ``score = u_row . v_col + a_row + b_col``; ``P(label <= k) = sigmoid(t_k + s_row - score)``
    with increasing cut-points ``t_1 < ... < t_{c-1}`` shared by all rows and a per-row shift
    ``s_row`` (each row keeps its own use of the scale). The class probabilities are the
    differences of consecutive cumulative probabilities, so a near miss costs less than a far
    one. A per-row, per-class bias ``B[row]`` is then added to their logarithm: it lets a row
    skip labels altogether (many MovieLens users never give half stars), which no monotone
    cumulative model can express. ``forward`` returns the normalised log-probabilities as
    logits, so ``softmax(logits)`` is the model's distribution, non-negative and summing to one.
    """

    #: Weight of the per-class row bias in :meth:`penalty`, relative to the factors'. Rows have
    #: many ratings each, so their bias needs far less shrinkage than the factors do.
    BIAS_PENALTY = 0.02
    #: Weight of the scalar row and column biases and the row shift, relative to the factors'.
    SCALAR_PENALTY = 0.1

    def __init__(self, n: int, d: int, h: int = 32, c: int = 6) -> None:
        super().__init__()
        if c < 2:
            raise ValueError("an ordinal model needs at least two classes")
        self.U = nn.Embedding(n, h)
        self.V = nn.Embedding(d, h)
        self.row_bias = nn.Embedding(n, 1)
        self.col_bias = nn.Embedding(d, 1)
        self.row_shift = nn.Embedding(n, 1)
        self.row_class_bias = nn.Embedding(n, c)
        for table in (self.U, self.V):
            nn.init.normal_(table.weight, std=0.1)
        for table in (self.row_bias, self.col_bias, self.row_shift, self.row_class_bias):
            nn.init.zeros_(table.weight)
        self.first_cut = nn.Parameter(torch.tensor([-(c - 2) / 2.0]))
        # Gaps between cut-points, kept positive through softplus (softplus(0.5413) = 1).
        self.gaps = nn.Parameter(torch.full((c - 2,), 0.5413))

    def cut_points(self) -> torch.Tensor:
        steps = nn.functional.softplus(self.gaps)
        return torch.cat([self.first_cut, self.first_cut + torch.cumsum(steps, 0)])

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.forward_with_penalty(pairs)[0]

    def forward_with_penalty(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (as logits) and the per-example L2 of the looked-up rows."""
        rows, cols = pairs[:, 0], pairs[:, 1]
        u, v = self.U(rows), self.V(cols)
        row_bias, col_bias = self.row_bias(rows), self.col_bias(cols)
        shift, class_bias = self.row_shift(rows), self.row_class_bias(rows)
        score = (u * v).sum(1, keepdim=True) + row_bias + col_bias
        cuts = self.cut_points().unsqueeze(0) + shift
        # P(label = k) = sigmoid(u) - sigmoid(l) for the cut-point margins l < u around class k
        # (the outermost at -+1e4, i.e. minus and plus infinity), computed in the log domain as
        # log sigmoid(u) + log sigmoid(-l) + log(1 - exp(l - u)): the plain difference cancels
        # in float32 when both terms are close, and torch and onnxruntime then disagree.
        edge = torch.full_like(score, 1e4)
        margins = torch.cat([-edge, cuts - score, edge], dim=1)
        lower, upper = margins[:, :-1], margins[:, 1:]
        gap = (upper - lower).clamp_min(1e-6)
        # log sigmoid(x) is written -softplus(-x): onnxruntime's Sigmoid is accurate only in
        # absolute terms, so Log(Sigmoid(-16)) comes out -16.6, while its Softplus is exact.
        softplus = nn.functional.softplus
        log_probabilities = -softplus(-upper) - softplus(lower) + torch.log(-torch.expm1(-gap))
        logits = torch.log_softmax(log_probabilities + class_bias, 1)
        penalty = (
            u.square().sum(1)
            + v.square().sum(1)
            + self.SCALAR_PENALTY
            * (row_bias.square().sum(1) + col_bias.square().sum(1) + shift.square().sum(1))
            + self.BIAS_PENALTY * class_bias.square().sum(1)
        ).mean()
        return logits, penalty


def _concat(n_rows: int, n_cols: int, dim: int, n_classes: int) -> nn.Module:
    return MatrixFactorization(n_rows, n_cols, h=dim, c=n_classes)


def _product(n_rows: int, n_cols: int, dim: int, n_classes: int) -> nn.Module:
    return BiasedProduct(n_rows, n_cols, h=dim, c=n_classes)


def _ordinal(n_rows: int, n_cols: int, dim: int, n_classes: int) -> nn.Module:
    return OrdinalProduct(n_rows, n_cols, h=dim, c=n_classes)


#: Architecture name -> constructor ``(n_rows, n_cols, dim, n_classes) -> nn.Module``.
ARCHITECTURES: dict[str, Callable[[int, int, int, int], nn.Module]] = {
    "concat": _concat,
    "product": _product,
    "ordinal": _ordinal,
}


def build_model(
    arch: str, n_rows: int, n_cols: int, dim: int, n_classes: int, *, sparse: bool = False
) -> nn.Module:
    """Construct the registered architecture ``arch``.

    ``sparse=True`` makes every embedding table produce sparse gradients (only the looked-up
    rows), for :class:`torch.optim.SparseAdam`; the forward computation is the same.
    """
    try:
        constructor = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    model = constructor(n_rows, n_cols, dim, n_classes)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            module.sparse = sparse
    return model
