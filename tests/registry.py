"""Registries of every penalty and loss, shared data, and reference objectives written in NumPy.

Tests parametrize over ``PENALTIES`` and ``LOSSES`` so that one property is checked on every member.
All solver tests use the shapes ``(N, P)`` below where they can, so that compiled programs are shared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from scipy.special import expit, logsumexp, xlogy

import jaxreg as jr

N, P = 40, 6
GROUPS = (0, 0, 1, 1, 1, 2)
WEIGHTS = np.array([1.0, 2.0, 0.5, 1.5, 1.0, 0.8])
WEIGHTS0 = np.array([1.0, 0.0, 0.5, 1.5, 1.0, 0.8])  # feature 1 unpenalized
GROUP_WEIGHTS = np.array([1.0, 2.0, 0.5])
GROUP_WEIGHTS0 = np.array([1.0, 0.0, 0.5])  # group 1 (features 2, 3, 4) unpenalized


@dataclasses.dataclass(frozen=True)
class PenaltyCase:
    name: str
    make: Callable[[Any], jr.Penalty]  # alpha -> penalty
    free: tuple[int, ...] = ()  # features with penalty factor 0
    sparse: bool = True  # has a critical alpha (produces exact zeros)

    def __str__(self) -> str:
        return self.name


PENALTIES = [
    PenaltyCase("L1", lambda a: jr.L1(a)),
    PenaltyCase("L1-weights", lambda a: jr.L1(a, weights=WEIGHTS)),
    PenaltyCase("L1-weights0", lambda a: jr.L1(a, weights=WEIGHTS0), free=(1,)),
    PenaltyCase("L1-positive", lambda a: jr.L1(a, positive=True)),
    PenaltyCase("L1-positive-weights0", lambda a: jr.L1(a, weights=WEIGHTS0, positive=True), free=(1,)),
    PenaltyCase("L2", lambda a: jr.L2(a), sparse=False),
    PenaltyCase("L2-weights0", lambda a: jr.L2(a, weights=WEIGHTS0), free=(1,), sparse=False),
    PenaltyCase("ElasticNet", lambda a: jr.ElasticNet(a, 0.5)),
    PenaltyCase("ElasticNet-weights", lambda a: jr.ElasticNet(a, 0.3, weights=WEIGHTS)),
    PenaltyCase("ElasticNet-weights0", lambda a: jr.ElasticNet(a, 0.7, weights=WEIGHTS0), free=(1,)),
    PenaltyCase("ElasticNet-positive", lambda a: jr.ElasticNet(a, 0.5, positive=True)),
    PenaltyCase(
        "ElasticNet-positive-weights0",
        lambda a: jr.ElasticNet(a, 0.6, weights=WEIGHTS0, positive=True),
        free=(1,),
    ),
    PenaltyCase("GroupLasso", lambda a: jr.GroupLasso(a, groups=GROUPS)),
    PenaltyCase("GroupLasso-weights", lambda a: jr.GroupLasso(a, groups=GROUPS, weights=GROUP_WEIGHTS)),
    PenaltyCase(
        "GroupLasso-weights0",
        lambda a: jr.GroupLasso(a, groups=GROUPS, weights=GROUP_WEIGHTS0),
        free=(2, 3, 4),
    ),
]
PENALTY = {c.name: c for c in PENALTIES}


def is_positive(penalty: jr.Penalty) -> bool:
    return bool(getattr(penalty, "positive", False))


def penalty_strengths(penalty: jr.Penalty, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (l1, l2) strengths of an elastic-net-family penalty, from the documented formulas."""
    alpha = float(penalty.alpha)
    wt = np.ones(p) if penalty.weights is None else np.asarray(penalty.weights, float)
    rho = {jr.L1: 1.0, jr.L2: 0.0}.get(type(penalty))
    if rho is None:
        rho = float(penalty.l1_ratio)
    return alpha * wt * rho, alpha * wt * (1.0 - rho)


def group_strengths(penalty: jr.GroupLasso) -> np.ndarray:
    """``alpha * weights_g * sqrt(|g|)`` per group."""
    ids = np.asarray(penalty.groups)
    sizes = np.bincount(ids)
    wt = np.ones(sizes.size) if penalty.weights is None else np.asarray(penalty.weights, float)
    return float(penalty.alpha) * wt * np.sqrt(sizes)


# -- losses --------------------------------------------------------------------------------------------------


def _linear(X: np.ndarray) -> np.ndarray:
    return X @ np.array([1.0, -1.5, 0.0, 0.0, 0.8, 0.0])[: X.shape[1]]


@dataclasses.dataclass(frozen=True)
class LossCase:
    name: str
    loss: jr.Loss
    make_y: Callable[[np.ndarray, np.random.Generator], np.ndarray]

    def __str__(self) -> str:
        return self.name


def _multinomial_y(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    B = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [0.5, 0.0, 0.0]])
    z = X[:, :3] @ B + rng.gumbel(size=(X.shape[0], 3))
    y = np.argmax(z, axis=1)
    y[:3] = [0, 1, 2]
    return y.astype(float)


LOSSES = [
    LossCase(
        "squared", jr.SquaredLoss(), lambda X, rng: _linear(X) + 0.5 + 0.3 * rng.standard_normal(len(X))
    ),
    LossCase(
        "logistic",
        jr.LogisticLoss(),
        lambda X, rng: (rng.uniform(size=len(X)) < expit(_linear(X) + 0.3)).astype(float),
    ),
    LossCase(
        "poisson", jr.PoissonLoss(), lambda X, rng: rng.poisson(np.exp(0.4 * _linear(X) + 0.5)).astype(float)
    ),
    LossCase("huber", jr.HuberLoss(1.0), lambda X, rng: _linear(X) - 0.3 + rng.standard_t(2, size=len(X))),
    LossCase("multinomial", jr.MultinomialLoss(), _multinomial_y),
]
LOSS = {c.name: c for c in LOSSES}


def make_X(n: int = N, p: int = P, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1] += 0.5 * X[:, 0]  # some correlation
    return X


def make_data(loss_name: str, n: int = N, p: int = P, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = make_X(n, p, seed)
    y = LOSS[loss_name].make_y(X, np.random.default_rng(seed + 1000))
    return X, y


def null_gradient(X: Any, y: Any, loss: jr.Loss, sample_weight: Any = None) -> np.ndarray:
    """``X.T @ (s * u0)`` with ``u0 = -f'(y, b0)`` at the intercept-only model, ``s`` normalized."""
    X = np.asarray(X, float)
    y = np.asarray(y)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    s = s / s.sum()
    if isinstance(loss, jr.MultinomialLoss):
        k = int(y.max()) + 1
        loss = dataclasses.replace(loss, n_classes=k)
        b0 = np.asarray(loss.intercept_only(y.astype(np.int32), s))
        u0 = -np.asarray(
            jax.vmap(jax.grad(lambda yi, z: loss(yi, z), argnums=1), (0, None))(y.astype(np.int32), b0)
        )
        return X.T @ (s[:, None] * u0)
    b0 = float(np.asarray(loss.intercept_only(y, s))[0])
    u0 = -np.asarray(jax.vmap(jax.grad(lambda yi, z: loss(yi, z), argnums=1), (0, None))(y, b0))
    return X.T @ (s * u0)


# -- reference objectives in NumPy (independent of jaxreg's loss and penalty code) ---------------------------


def np_loss(name: str, y: np.ndarray, z: np.ndarray, delta: float = 1.0) -> np.ndarray:
    if name == "squared":
        return 0.5 * (y - z) ** 2
    if name == "logistic":
        return np.logaddexp(0.0, z) - y * z
    if name == "poisson":
        return np.exp(z) - y * z + xlogy(y, y) - y
    if name == "huber":
        r = np.abs(y - z)
        return np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta))
    if name == "multinomial":
        yi = y.astype(int)
        return logsumexp(z, axis=1) - z[np.arange(len(y)), yi]
    raise KeyError(name)


def np_enet(coef: np.ndarray, alpha: float, l1_ratio: float, weights: np.ndarray | None = None) -> float:
    coef = np.asarray(coef, float)
    wt = np.ones(coef.shape[0]) if weights is None else np.asarray(weights, float)
    wt = wt.reshape(wt.shape + (1,) * (coef.ndim - 1))
    return float(alpha * np.sum(wt * (l1_ratio * np.abs(coef) + 0.5 * (1 - l1_ratio) * coef**2)))


def np_objective(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    coef: Any,
    intercept: Any,
    penalty_value: float,
    sample_weight: np.ndarray | None = None,
) -> float:
    """``sum_i s_i f(y_i, x_i @ w + b) / sum(s) + penalty_value``."""
    coef = np.asarray(coef, float)
    z = np.asarray(X, float) @ coef + np.asarray(intercept, float)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    return float(np.sum(s * np_loss(name, np.asarray(y, float), z)) / np.sum(s) + penalty_value)


def enet_gap(
    X: np.ndarray,
    y: np.ndarray,
    coef: np.ndarray,
    intercept: float,
    alpha: float,
    l1_ratio: float,
    sample_weight: np.ndarray | None = None,
    positive: bool = False,
) -> float:
    """Duality gap of the (weighted) elastic net with intercept, written out in NumPy.

    Primal ``1/(2 S) sum s_i r_i**2 + alpha (rho |w|_1 + (1-rho)/2 |w|**2)`` (``w >= 0`` when positive)
    with ``r = y - Xw - b`` and the intercept at its optimum given ``w`` (``r`` has weighted mean 0);
    dual point ``theta = c r`` with ``c`` scaling ``X.T (s theta) / S`` into the dual ball of the penalty.
    """
    coef = np.asarray(coef, float)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    s = s / s.sum()
    r = y - X @ coef - intercept
    r = r - np.sum(s * r)
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    primal = 0.5 * np.sum(s * r**2) + l1 * np.abs(coef).sum() + 0.5 * l2 * np.sum(coef**2)
    v = X.T @ (s * r)
    a = np.maximum(v, 0.0) if positive else np.abs(v)
    c = 1.0 if l2 > 0 or not np.any(a) else min(1.0, l1 / np.max(a))
    theta = c * r
    yc = y - np.sum(s * y)
    dual = np.sum(s * (yc * theta - 0.5 * theta**2))
    if l2 > 0:
        dual -= np.sum(np.maximum(c * a - l1, 0.0) ** 2) / (2 * l2)
    return float(primal - dual)


def np_dloss(name: str, y: np.ndarray, z: np.ndarray, delta: float = 1.0) -> np.ndarray:
    """Derivative of the per-sample loss in ``z``."""
    if name == "squared":
        return z - y
    if name == "logistic":
        return expit(z) - y
    if name == "poisson":
        return np.exp(z) - y
    if name == "huber":
        return np.clip(z - y, -delta, delta)
    if name == "multinomial":
        p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
        return p - np.eye(z.shape[1])[y.astype(int)]
    raise KeyError(name)
