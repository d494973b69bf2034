"""Benchmark problems: Toeplitz-correlated designs with sparse truth, and NumPy gap checks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Problem(NamedTuple):
    name: str
    X: np.ndarray
    y: np.ndarray
    kind: str  # "lasso" | "logistic"


def toeplitz_design(n: int, p: int, rho: float = 0.5, seed: int = 0) -> np.ndarray:
    """Rows drawn from N(0, Sigma) with Sigma_ij = rho**|i - j| (an AR(1) chain, so O(n p) to draw)."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n, p))
    X = np.empty((n, p))
    X[:, 0] = E[:, 0]
    scale = np.sqrt(1 - rho**2)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + scale * E[:, j]
    return X


def sparse_response(X: np.ndarray, density: float = 0.01, snr: float = 3.0, seed: int = 0) -> np.ndarray:
    """``y = X w + noise`` with ``ceil(density * p)`` nonzero ``w`` and ``||X w|| / ||noise|| = snr``."""
    rng = np.random.default_rng(seed + 1)
    n, p = X.shape
    k = max(1, int(np.ceil(density * p)))
    w = np.zeros(p)
    w[rng.choice(p, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 2.0, k)
    signal = X @ w
    noise = rng.standard_normal(n)
    noise *= np.linalg.norm(signal) / (snr * np.linalg.norm(noise))
    return signal + noise


#: XLA:GPU command buffers (CUDA graphs) of XLA's default kinds plus WHILE and CONDITIONAL: the
#: while loops run as conditional graph nodes.  Measured against XLA's defaults by iteration.py
#: (``--graphs 0,1``) and run.py (``--gpu-graphs on``); jaxreg keeps the defaults.
GPU_COMMAND_BUFFERS = "FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,DYNAMIC_SLICE_FUSION,WHILE,CONDITIONAL"

SIZES = {"wide": (500, 5000), "tall": (20000, 200), "square": (2000, 2000), "logistic": (2000, 1000)}


def make(name: str, scale: float = 1.0) -> Problem:
    n, p = SIZES[name]
    n, p = max(20, int(n * scale)), max(10, int(p * scale))
    X = toeplitz_design(n, p)
    y = sparse_response(X)
    if name == "logistic":
        return Problem(name, X, (y > np.median(y)).astype(float), "logistic")
    return Problem(name, X, y, "lasso")


def lasso_gap(X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float, alpha: float) -> float:
    """Duality gap of ``1/(2n)||y - Xw - b||^2 + alpha ||w||_1`` at ``(w, b)``, in NumPy.

    Uses the optimal intercept for ``w`` (centering) and the rescaled residual as dual point.
    """
    n = len(y)
    xm, ym = X.mean(0), y.mean()
    r = (y - ym) - (X - xm) @ coef
    primal = 0.5 * r @ r / n + alpha * np.abs(coef).sum()
    dual_norm = np.abs(X.T @ r - xm * r.sum()).max() / n
    theta = r * min(1.0, alpha / dual_norm) if dual_norm > 0 else r
    yc = y - ym
    dual = theta @ yc / n - 0.5 * theta @ theta / n
    return primal - dual


def logistic_gap(X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float, alpha: float) -> float:
    """Duality gap of ``mean(log(1 + exp(z)) - y z) + alpha ||w||_1`` at ``(w, b)``, in NumPy.

    The dual point ``u = y - sigmoid(z)`` is rescaled into the dual ball; the intercept constraint
    ``sum(u) = 0`` is counted through a box of radius ``max(2|b|, sqrt(scale))`` as in jaxreg's
    solver.  Two such points: with the columns of ``X`` as they are and the intercept ``b``, and with
    them centered and the intercept ``b + mean(X) @ w`` (the solver's coordinates, see
    ``jaxreg.solvers``).  Each gives an upper bound on the suboptimality; the smaller is returned
    (they differ by ``mean(X) * sum(u)`` in the dual norm: on the L1-logistic benchmark by up to 8%).
    """
    n = len(y)
    z = X @ coef + intercept
    primal = np.mean(np.logaddexp(0, z) - y * z) + alpha * np.abs(coef).sum()
    u = y - 1 / (1 + np.exp(-z))
    xm = X.mean(axis=0)
    gaps = []
    for shift, b in ((np.zeros_like(xm), intercept), (xm, intercept + xm @ coef)):
        dual_norm = np.abs(X.T @ u - shift * u.sum()).max() / n
        c = min(1.0, alpha / dual_norm) if dual_norm > 0 else 1.0
        p = y - c * u
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = np.where(p > 0, p * np.log(p), 0) + np.where(p < 1, (1 - p) * np.log(1 - p), 0)
        radius = max(2 * abs(b), np.sqrt(tol_scale(y, "logistic")))
        gaps.append(primal + np.mean(ent) + c * radius * abs(np.mean(u)))
    return min(gaps)


def _null_logloss(y: np.ndarray) -> float:
    m = y.mean()
    return -(m * np.log(m) + (1 - m) * np.log(1 - m))


def tol_scale(y: np.ndarray, kind: str) -> float:
    """The unit of ``tol``: ``||y - mean(y)||^2 / n`` (squared), twice the null log-loss (logistic)."""
    if kind == "logistic":
        return 2 * _null_logloss(y)
    return float(np.mean((y - y.mean()) ** 2))
