"""A fused training step for the ordinal model: the same lazy Adam, without eager autograd.

The autograd path (:mod:`mfx.train.trainer` with ``SparseAdam``) spends most of a step on the
machinery rather than the arithmetic: six embedding lookups each make a sparse gradient that
SparseAdam coalesces by sorting, and the ordinal head's ~100 small ops each allocate, fill and
free ``[batch, classes]`` tensors in the forward and again in the backward pass. This module
computes the same loss and the same gradients in closed form, on two merged tables, and then
takes the same lazy Adam step SparseAdam takes:

* The four per-row tables of :class:`~mfx.train.models.OrdinalProduct` (``U``, ``row_bias``,
  ``row_shift``, ``row_class_bias``) are always looked up together, so they live side by side in
  one ``[rows, dim + 2 + classes]`` table, and the two per-column ones in one
  ``[cols, dim + 1]`` table: one gather, one gradient, one update each instead of six.
* The batch is put in row order (the loss is a sum, so the order is free): the big row table
  is then walked forwards and a row's repeats sit side by side. Rows are looked up, and each
  touched row's gradient summed, with ``embedding_bag`` (FBGEMM's kernel on CPU), which moves
  these short rows 1.5-3x faster than ``index_select`` / ``index_add_``, to the same bits.
* The ordinal head's gradient is written out (see :meth:`FusedOrdinal.step`); the cut-points,
  a handful of numbers, keep autograd and their Adam optimizer.

The arithmetic is that of the autograd path, not an approximation of it: the tests compare the
loss and the updated weights, step by step, with autograd + SparseAdam's on the same batches
(also where the label's probability underflows), and whole fits of both paths.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mfx.train.models import OrdinalProduct

#: Logit margin standing in for minus and plus infinity (as in :class:`OrdinalProduct`).
_EDGE = 1e4


def supports(model: nn.Module) -> bool:
    """Whether :class:`FusedOrdinal` can train ``model``."""
    return type(model) is OrdinalProduct


def is_state(state: Any) -> bool:
    """Whether ``state`` is a :meth:`FusedOrdinal.state_dict` (not a torch optimizer's)."""
    return isinstance(state, dict) and set(state) == {"rows", "cols"}


class _LazyAdam:
    """SparseAdam's update on a dense table, applied to the rows a step touched.

    ``m`` and ``v`` are updated only for those rows; the bias corrections use the number of
    steps taken so far, as :class:`torch.optim.SparseAdam` does.
    """

    def __init__(self, table: torch.Tensor, lr: float, betas=(0.9, 0.999), eps=1e-8) -> None:
        self.table = table
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.exp_avg = torch.zeros_like(table)
        self.exp_avg_sq = torch.zeros_like(table)
        self.steps = 0

    def step(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        self.steps += 1
        beta1, beta2 = self.beta1, self.beta2
        exp_avg = _gather(self.exp_avg, rows)
        exp_avg_sq = _gather(self.exp_avg_sq, rows)
        # SparseAdam's m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2), one pass each.
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.lerp_(grad.square(), 1 - beta2)
        self.exp_avg.index_copy_(0, rows, exp_avg)
        self.exp_avg_sq.index_copy_(0, rows, exp_avg_sq)
        step_size = self.lr * math.sqrt(1 - beta2**self.steps) / (1 - beta1**self.steps)
        update = exp_avg.div_(exp_avg_sq.sqrt_().add_(self.eps))
        self.table.index_add_(0, rows, update, alpha=-step_size)

    def state_dict(self) -> dict[str, Any]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.steps = int(state["steps"])


def _gather(table: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``table[indices]``, through embedding_bag with one index per bag (a faster kernel)."""
    bags = torch.arange(indices.shape[0], device=indices.device)
    return nn.functional.embedding_bag(indices, table, bags, mode="sum")


def _sum_by_index(
    indices: torch.Tensor, values: torch.Tensor, ordered: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct ``indices``, ascending, and the sum of ``values``' rows for each.

    ``ordered`` says the indices are already ascending (the rows of a row-ordered batch).
    """
    if ordered:
        order = torch.arange(indices.shape[0], device=indices.device)
    else:
        indices, order = torch.sort(indices, stable=True)
    distinct, counts = torch.unique_consecutive(indices, return_counts=True)
    starts = torch.zeros_like(counts)
    torch.cumsum(counts[:-1], 0, out=starts[1:])
    return distinct, nn.functional.embedding_bag(order, values, starts, mode="sum")


class FusedOrdinal:
    """Trains an :class:`OrdinalProduct`'s tables with closed-form gradients and lazy Adam.

    The model's embedding weights are copied into two merged tables when this object is made;
    :meth:`write_back` copies them into the model again (before evaluating, snapshotting or
    returning it). The cut-points stay the model's parameters: :meth:`step` leaves their
    gradient in ``.grad`` for the caller's optimizer.

    Parameters
    ----------
    model
        The model to train.
    lr
        Adam's learning rate for the tables (SparseAdam's in the autograd path).
    l2
        Weight of the per-example penalty, as in the autograd path.
    """

    def __init__(self, model: OrdinalProduct, lr: float, l2: float) -> None:
        if not supports(model):
            raise TypeError(f"FusedOrdinal trains an OrdinalProduct, not {type(model).__name__}")
        self.model = model
        self.dim = model.U.weight.shape[1]
        self.n_classes = model.row_class_bias.weight.shape[1]
        self.l2 = l2
        self.rows, self.cols = self._merged()
        device = self.rows.device
        self.row_adam = _LazyAdam(self.rows, lr)
        self.col_adam = _LazyAdam(self.cols, lr)
        # d(penalty)/d(entry) = 2 * weight * entry, per column of the merged tables.
        h, c = self.dim, self.n_classes
        scalar, bias = OrdinalProduct.SCALAR_PENALTY, OrdinalProduct.BIAS_PENALTY
        self.row_penalty = torch.tensor(
            [1.0] * h + [scalar, scalar] + [bias] * c, device=device
        ).mul_(2 * l2)
        self.col_penalty = torch.tensor([1.0] * h + [scalar], device=device).mul_(2 * l2)

    def step(
        self,
        rows: torch.Tensor,
        cols: torch.Tensor,
        labels: torch.Tensor,
        sync: Any = None,
    ) -> torch.Tensor:
        """One step on a batch: returns the batch's summed cross-entropy (without penalty).

        ``sync`` (a :class:`mfx.train.distributed.GradientSync`) combines the touched rows'
        gradients of all workers before the update.
        """
        h, c = self.dim, self.n_classes
        n = rows.shape[0]
        rows, order = torch.sort(rows, stable=True)
        cols, labels = cols.index_select(0, order), labels.index_select(0, order)
        r = _gather(self.rows, rows)
        q = _gather(self.cols, cols)
        u, v = r[:, :h], q[:, :h]
        score = (u * v).sum(1) + r[:, h] + q[:, h]
        cuts = self.model.cut_points()
        # margins[:, k] is the logit margin between class k - 1 and class k; columns 0 and c
        # are the infinite edges. P(label = k) = sigmoid(margins[k + 1]) - sigmoid(margins[k]).
        margins = torch.empty((n, c + 1), device=r.device)
        margins[:, 0] = -_EDGE
        margins[:, c] = _EDGE
        torch.add(cuts.detach(), (r[:, h + 1] - score).unsqueeze(1), out=margins[:, 1:c])
        # sigmoid(u) - sigmoid(l) = sigmoid(u) sigmoid(-l) (1 - exp(l - u)): the product keeps
        # its relative accuracy in both tails, where the difference cancels. u - l is the gap
        # between two cut-points, the same for every example (infinite for the outer classes).
        cumulative = torch.sigmoid(margins)
        survival = torch.sigmoid(margins.neg())
        spacing = torch.ones(c, device=r.device)
        spacing[1:-1] = -torch.expm1(-(cuts[1:] - cuts[:-1]).detach())
        probabilities = cumulative[:, 1:] * survival[:, :-1] * spacing
        class_bias = r[:, h + 2 :]
        top = class_bias.max(1, keepdim=True).values
        weights = (class_bias - top).exp_()
        weighted = probabilities * weights
        total = weighted.sum(1, keepdim=True).clamp_min_(1e-30)
        # -log q[label] = -(log P[label] + B[label]) + log sum_k P[k] exp(B[k]); log P[label]
        # in the log domain, which stays exact when P[label] is tiny.
        label = labels.unsqueeze(1)
        lower = margins.gather(1, label).squeeze(1)
        upper = margins.gather(1, label + 1).squeeze(1)
        gap = upper - lower
        log_p = (
            -nn.functional.softplus(-upper)
            - nn.functional.softplus(lower)
            + torch.log(-torch.expm1(-gap.clamp_min(1e-6)))
        )
        label_bias = class_bias.gather(1, label).squeeze(1)
        loss = total.squeeze(1).log() + top.squeeze(1) - log_p - label_bias

        # Gradients of the mean loss. d/dB[k] = q[k] - [k = label].
        inverse_n = 1.0 / n
        grad_rows = torch.empty_like(r)
        grad_class_bias = grad_rows[:, h + 2 :]
        torch.div(weighted, total, out=grad_class_bias)
        grad_class_bias.scatter_add_(1, label, torch.full_like(lower, -1.0).unsqueeze(1))
        # d log(total) / d margin[k] = F'(margin[k]) (w[k - 1] - w[k]) / total; the label's
        # own term is d(-log P[label]) at its lower and upper margins.
        slope = cumulative[:, 1:c] * survival[:, 1:c]
        grad_margins = torch.zeros((n, c + 1), device=r.device)
        torch.mul(slope, weights[:, :-1] - weights[:, 1:], out=grad_margins[:, 1:c])
        grad_margins[:, 1:c] /= total
        inverse_expm1 = 1.0 / torch.expm1(gap.clamp_min(1e-6))
        grad_margins.scatter_add_(1, label, (torch.sigmoid(lower) + inverse_expm1).unsqueeze(1))
        grad_margins.scatter_add_(
            1, label + 1, -(torch.sigmoid(-upper) + inverse_expm1).unsqueeze(1)
        )
        inner = grad_margins[:, 1:c]
        grad_shift = inner.sum(1)
        # margin = cut + shift - score
        cuts.backward(inner.sum(0) * inverse_n)
        grad_score = -grad_shift
        torch.mul(v, grad_score.unsqueeze(1), out=grad_rows[:, :h])
        grad_rows[:, h] = grad_score
        grad_rows[:, h + 1] = grad_shift
        grad_cols = torch.empty_like(q)
        torch.mul(u, grad_score.unsqueeze(1), out=grad_cols[:, :h])
        grad_cols[:, h] = grad_score
        # The mean over the batch, plus the per-example penalty's gradient.
        grad_rows.mul_(inverse_n).addcmul_(r, self.row_penalty, value=inverse_n)
        grad_cols.mul_(inverse_n).addcmul_(q, self.col_penalty, value=inverse_n)

        self._update(self.row_adam, *_sum_by_index(rows, grad_rows, ordered=True), sync)
        self._update(self.col_adam, *_sum_by_index(cols, grad_cols), sync)
        return loss.detach().sum()

    def _update(
        self, adam: _LazyAdam, distinct: torch.Tensor, summed: torch.Tensor, sync: Any
    ) -> None:
        if sync is not None and sync.world.size > 1:
            # Every worker's touched rows, in rank order, summed again per row: the same
            # update on every worker.
            distinct, summed = _sum_by_index(*sync.gather_rows(distinct, summed))
        adam.step(distinct, summed)

    @torch.no_grad()
    def _merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        row_tables = [model.U, model.row_bias, model.row_shift, model.row_class_bias]
        rows = torch.cat([table.weight for table in row_tables], 1).contiguous()
        cols = torch.cat([model.V.weight, model.col_bias.weight], 1).contiguous()
        return rows, cols

    def reload(self) -> None:
        """Copy the model's embedding weights into the merged tables (after loading them)."""
        rows, cols = self._merged()
        self.rows.copy_(rows)
        self.cols.copy_(cols)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the merged tables into the model's embedding weights."""
        h, c, model = self.dim, self.n_classes, self.model
        model.U.weight.copy_(self.rows[:, :h])
        model.row_bias.weight.copy_(self.rows[:, h : h + 1])
        model.row_shift.weight.copy_(self.rows[:, h + 1 : h + 2])
        model.row_class_bias.weight.copy_(self.rows[:, h + 2 : h + 2 + c])
        model.V.weight.copy_(self.cols[:, :h])
        model.col_bias.weight.copy_(self.cols[:, h : h + 1])

    def state_dict(self) -> dict[str, Any]:
        """The optimizer moments and step counts (the weights are the model's)."""
        return {"rows": self.row_adam.state_dict(), "cols": self.col_adam.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.row_adam.load_state_dict(state["rows"])
        self.col_adam.load_state_dict(state["cols"])
