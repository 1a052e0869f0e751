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
        row_factors = self.U.weight[pairs[:, 0]]
        col_factors = self.V.weight[pairs[:, 1]]
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


def _concat(n_rows: int, n_cols: int, dim: int, n_classes: int) -> nn.Module:
    return MatrixFactorization(n_rows, n_cols, h=dim, c=n_classes)


#: Architecture name -> constructor ``(n_rows, n_cols, dim, n_classes) -> nn.Module``.
ARCHITECTURES: dict[str, Callable[[int, int, int, int], nn.Module]] = {"concat": _concat}


def build_model(arch: str, n_rows: int, n_cols: int, dim: int, n_classes: int) -> nn.Module:
    """Construct the registered architecture ``arch``."""
    try:
        constructor = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    return constructor(n_rows, n_cols, dim, n_classes)
