"""Deterministic synthetic ratings, generated in code (numpy only).

The built-in default dataset (:func:`planted_ratings`) is a planted *additive ordinal* rating
matrix: every row ``i`` has a tendency ``a_i`` and every column ``j`` an appeal ``b_j`` (both
standard normal), a cell's latent score is ``a_i + b_j`` plus Gaussian noise, and the score is
cut at fixed quantiles into the labels ``1..5``. A random ``density`` fraction of the cells is
observed. With little noise the labels are a deterministic function of the row and column,
which the report's additive ``concat`` model can represent exactly, so a trainer that works
recovers it: the tests hold it to a bar on the noiseless labels.

:func:`planted_interaction` plants labels that depend on the *product* of row and column
factors, which an additive model cannot fit.
"""

from __future__ import annotations

import numpy as np

from mfx.data import RawRatings

#: Description stored in checkpoints trained on the default data.
DEFAULT_SOURCE = "builtin:planted(rows=300, cols=200, density=0.3, classes=1..5, noise=0.1, seed=0)"


def _cut(score: np.ndarray, n_classes: int, first_label: int) -> np.ndarray:
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    return np.searchsorted(edges, score).astype(np.int64) + first_label


def planted_ratings(
    n_rows: int = 300,
    n_cols: int = 200,
    density: float = 0.3,
    n_classes: int = 5,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[RawRatings, np.ndarray]:
    """The planted additive ordinal dataset and its noiseless labels (same order).

    Returns
    -------
    ratings, clean
        ``ratings`` holds the observed cells with noisy labels ``1..n_classes``; ``clean`` the
        labels the same cells would have without noise.
    """
    rng = np.random.default_rng(seed)
    tendency = rng.standard_normal(n_rows)
    appeal = rng.standard_normal(n_cols)
    observed = rng.random((n_rows, n_cols)) < density
    rows, cols = np.nonzero(observed)
    latent = tendency[rows] + appeal[cols]
    noisy = latent + noise * rng.standard_normal(latent.shape)
    edges = np.quantile(latent, np.linspace(0, 1, n_classes + 1)[1:-1])
    labels = np.searchsorted(edges, noisy).astype(np.int64) + 1
    clean = np.searchsorted(edges, latent).astype(np.int64) + 1
    raw = RawRatings(
        rows.astype(np.int64),
        cols.astype(np.int64),
        labels.astype(np.float64),
        source=DEFAULT_SOURCE
        if (n_rows, n_cols, density, n_classes, noise, seed) == (300, 200, 0.3, 5, 0.1, 0)
        else f"builtin:planted(seed={seed})",
    )
    return raw, clean


def planted_interaction(
    n_rows: int = 200,
    n_cols: int = 150,
    density: float = 0.4,
    rank: int = 2,
    n_classes: int = 3,
    seed: int = 0,
) -> RawRatings:
    """Labels ``0..n_classes-1`` from the sign pattern of a rank-``rank`` product ``u_i . v_j``.

    Every row and every column sees each label about equally often, so per-row and per-column
    terms (the ``concat`` model) carry almost no information; only an interaction model fits.
    """
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n_rows, rank))
    v = rng.standard_normal((n_cols, rank))
    observed = rng.random((n_rows, n_cols)) < density
    rows, cols = np.nonzero(observed)
    score = np.einsum("ij,ij->i", u[rows], v[cols])
    labels = _cut(score, n_classes, 0)
    return RawRatings(
        rows.astype(np.int64),
        cols.astype(np.int64),
        labels.astype(np.float64),
        source=f"builtin:interaction(rank={rank}, seed={seed})",
    )


def report_matrices(
    size: int = 8, noise: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two ``size`` x ``size`` rating matrices (0..5) for the report's experiment.

    The report does not publish its matrices, so they are generated: one planted pattern,
    ``2.5 + 1.25 (a_i + b_j)`` with standard-normal row tendencies ``a`` and column appeals ``b``
    (the additive form the report's model can represent), and two independent noisy draws of it
    (Gaussian noise of standard deviation ``noise``), rounded and clipped to 0..5: the first for
    training, the second for testing on the same rows and columns. Every cell is known.
    """
    rng = np.random.default_rng(seed)
    tendency = rng.standard_normal(size)
    appeal = rng.standard_normal(size)
    pattern = 2.5 + 1.25 * (tendency[:, None] + appeal[None, :])

    def draw() -> np.ndarray:
        noisy = pattern + noise * rng.standard_normal(pattern.shape)
        return np.clip(np.rint(noisy), 0, 5).astype(np.int64)

    return draw(), draw()
