"""Losses: pure per-sample functions of ``(y, z)`` with what the solvers need.

A loss ``f(y, z)`` is evaluated per sample and returned unreduced; the objective is
``sum_i s_i f(y_i, z_i) / sum(s) + penalty(w)`` with ``z = X @ w + b``.  Each loss also provides

* ``conjugate(y, v)``: the convex conjugate of ``z -> f(y, z)`` (``inf`` outside its domain), used for
  duality gaps;
* ``curvature(y, z)``: an upper bound on the second derivative in ``z`` (constant for all but Poisson);
  the solvers take their step sizes from the second derivative at the current iterate (the private
  ``_local_curvature``, the bound for a loss that does not define it), with 1e-3 of the bound as floor;
* ``intercept_only(y, s)``: the optimal intercept of the model with ``w = 0``, used for ``alpha_max``
  and as the solver's starting point;
* ``check_target(y)``: validation of the targets (raises ``ValueError``).

=================  =======================================  ==================  =============
loss               f(y, z)                                  targets             curvature
=================  =======================================  ==================  =============
SquaredLoss        (y - z)**2 / 2                           real                1
LogisticLoss       log(1 + exp(z)) - y z                    {0, 1}              1/4
PoissonLoss        exp(z) - y z + y log y - y  (log link)   counts >= 0         exp(z)
HuberLoss          huber_delta(y - z)                       real                1
MultinomialLoss    logsumexp(z) - z[y]   (z has K entries)  {0, ..., K-1}       1/2
=================  =======================================  ==================  =============

``PoissonLoss`` is the half Poisson deviance (scikit-learn's ``PoissonRegressor`` objective) and
``LogisticLoss`` the binary cross-entropy with logits.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import xlogy
from jax.typing import ArrayLike

from .penalties import _pytree_dataclass, _static

__all__ = ["Loss", "SquaredLoss", "LogisticLoss", "PoissonLoss", "HuberLoss", "MultinomialLoss"]

Array = jax.Array


class Loss:
    """Base class of losses. Subclasses are frozen pytree dataclasses."""

    #: the intercept minimizing the loss given ``X @ w`` has a closed form (squared loss)
    closed_form_intercept: ClassVar[bool] = False
    #: the loss has a conjugate, so the solver can stop on a duality gap
    has_dual: ClassVar[bool] = True
    #: the loss is a function of the residual ``y - z`` alone, so a constant added to the targets
    #: and to the intercept changes nothing (the solver centers the targets of float32 models)
    of_residual: ClassVar[bool] = False

    @property
    def n_outputs(self) -> int:
        """Number of linear predictors per sample (``K`` for multinomial, else 1)."""
        return 1

    def __call__(self, y: ArrayLike, z: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def conjugate(self, y: ArrayLike, v: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def curvature(self, y: ArrayLike, z: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def intercept_only(self, y: ArrayLike, s: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_target(self, y: np.ndarray) -> np.ndarray:
        return y

    # -- helpers used by the solvers: y of shape (n,), z of shape (n, B, K) ---------------------

    def _value(self, y: Array, z: Array) -> Array:
        """Per-sample, per-lane loss ``(n, B)`` for ``z`` of shape ``(n, B, n_outputs)``."""
        return self(y[:, None], z[..., 0])

    def _conjugate(self, y: Array, v: Array) -> Array:
        return self.conjugate(y[:, None], v[..., 0])

    def _curvature(self, y: Array, z: Array) -> Array:
        return self.curvature(y[:, None], z[..., 0])

    def _local_curvature(self, y: Array, z: Array) -> Array:
        """The second derivative ``f''(y_i, z_i)`` itself ``(n, B)`` where a loss knows it, else the bound.

        The solvers weight the samples with it to estimate the curvature of the smooth part at the
        current iterate (see :func:`jaxreg.solvers.run`).
        """
        return self._curvature(y, z)


@_pytree_dataclass
class SquaredLoss(Loss):
    """``f(y, z) = (y - z)**2 / 2``: least squares (scikit-learn's Lasso / Ridge / ElasticNet).

    Example:
      >>> import jaxreg as jr
      >>> float(jr.SquaredLoss()(3.0, 1.0))
      2.0
    """

    closed_form_intercept: ClassVar[bool] = True
    of_residual: ClassVar[bool] = True

    def __call__(self, y: ArrayLike, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        z, y = jnp.broadcast_arrays(z, jnp.asarray(y, z.dtype))
        return optax.losses.l2_loss(z, y)

    def conjugate(self, y: ArrayLike, v: ArrayLike) -> Array:
        v = jnp.asarray(v)
        return v * y + 0.5 * v**2

    def curvature(self, y: ArrayLike, z: ArrayLike) -> Array:
        return jnp.ones_like(jnp.asarray(z))

    def intercept_only(self, y: ArrayLike, s: ArrayLike) -> Array:
        return jnp.sum(s * y)[None]


@_pytree_dataclass
class LogisticLoss(Loss):
    """``f(y, z) = log(1 + exp(z)) - y z`` for labels ``y`` in ``{0, 1}`` (binary cross-entropy).

    Example:
      >>> import jaxreg as jr
      >>> round(float(jr.LogisticLoss()(1.0, 0.0)), 6)
      0.693147
    """

    def __call__(self, y: ArrayLike, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        z, y = jnp.broadcast_arrays(z, jnp.asarray(y, z.dtype))
        return optax.losses.sigmoid_binary_cross_entropy(z, y)

    def conjugate(self, y: ArrayLike, v: ArrayLike) -> Array:
        p = jnp.asarray(v) + y
        inside = (p >= 0) & (p <= 1)
        pc = jnp.clip(p, 0.0, 1.0)
        return jnp.where(inside, xlogy(pc, pc) + xlogy(1.0 - pc, 1.0 - pc), jnp.inf)

    def curvature(self, y: ArrayLike, z: ArrayLike) -> Array:
        return jnp.full_like(jnp.asarray(z), 0.25)

    def _local_curvature(self, y: Array, z: Array) -> Array:
        return jax.nn.sigmoid(z[..., 0]) * jax.nn.sigmoid(-z[..., 0])  # p (1 - p), without cancellation

    def intercept_only(self, y: ArrayLike, s: ArrayLike) -> Array:
        m = jnp.sum(s * y)
        return jnp.log(m / (1.0 - m))[None]

    def check_target(self, y: np.ndarray) -> np.ndarray:
        values = np.unique(y)
        if not np.all(np.isin(values, (0, 1))):
            raise ValueError(f"LogisticLoss: y must hold labels 0 and 1, got values {values[:10]}")
        if values.size < 2:
            raise ValueError("LogisticLoss: y holds a single class; logistic regression needs both 0 and 1")
        return y


@_pytree_dataclass
class PoissonLoss(Loss):
    """Half Poisson deviance with log link: ``f(y, z) = exp(z) - y z + y log(y) - y``.

    ``y`` are non-negative counts (or rates), not all zero. Its curvature ``exp(z)`` is unbounded,
    so the solver backtracks on the step size.

    Example:
      >>> import jaxreg as jr
      >>> float(jr.PoissonLoss()(1.0, 0.0))
      0.0
    """

    def __call__(self, y: ArrayLike, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        y = jnp.asarray(y, z.dtype)
        return jnp.exp(z) - y * z + xlogy(y, y) - y

    def conjugate(self, y: ArrayLike, v: ArrayLike) -> Array:
        v = jnp.asarray(v)
        y = jnp.asarray(y, v.dtype)
        t = v + y
        tc = jnp.maximum(t, 0.0)
        return jnp.where(t >= 0, xlogy(tc, tc) - tc - (xlogy(y, y) - y), jnp.inf)

    def curvature(self, y: ArrayLike, z: ArrayLike) -> Array:
        return jnp.exp(jnp.asarray(z))

    def intercept_only(self, y: ArrayLike, s: ArrayLike) -> Array:
        return jnp.log(jnp.sum(s * y))[None]

    def check_target(self, y: np.ndarray) -> np.ndarray:
        if np.any(y < 0):
            raise ValueError("PoissonLoss: y must be non-negative counts, got negative values")
        if not np.any(y > 0):
            raise ValueError("PoissonLoss: y is all zero; the Poisson intercept would be -inf")
        return y


@_pytree_dataclass
class HuberLoss(Loss):
    """Huber loss of the residual: ``r**2 / 2`` for ``|r| <= delta``, else ``delta (|r| - delta / 2)``.

    Example:
      >>> import jaxreg as jr
      >>> float(jr.HuberLoss(delta=1.0)(3.0, 0.0))
      2.5
    """

    of_residual: ClassVar[bool] = True

    delta: ArrayLike = 1.35

    def __call__(self, y: ArrayLike, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        z, y = jnp.broadcast_arrays(z, jnp.asarray(y, z.dtype))
        return optax.losses.huber_loss(z, y, delta=self.delta)

    def check_target(self, y: np.ndarray) -> np.ndarray:
        if not isinstance(self.delta, jax.core.Tracer):
            d = np.asarray(self.delta, dtype=float)
            if d.ndim != 0 or not np.isfinite(d) or d <= 0:
                raise ValueError(f"HuberLoss: delta must be a positive finite scalar, got {self.delta!r}")
        return y

    def conjugate(self, y: ArrayLike, v: ArrayLike) -> Array:
        v = jnp.asarray(v)
        return jnp.where(jnp.abs(v) <= self.delta, v * y + 0.5 * v**2, jnp.inf)

    def curvature(self, y: ArrayLike, z: ArrayLike) -> Array:
        return jnp.ones_like(jnp.asarray(z))

    def _local_curvature(self, y: Array, z: Array) -> Array:
        return (jnp.abs(y[:, None] - z[..., 0]) <= self.delta).astype(z.dtype)

    def intercept_only(self, y: ArrayLike, s: ArrayLike) -> Array:
        # Weighted Huber location: bisection on the monotone derivative.
        y = jnp.asarray(y)
        slope = lambda b: jnp.sum(s * jnp.clip(y - b, -self.delta, self.delta))  # noqa: E731

        def body(_: int, bounds: tuple[Array, Array]) -> tuple[Array, Array]:
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            up = slope(mid) > 0
            return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 100, body, (jnp.min(y), jnp.max(y)))
        return (0.5 * (lo + hi))[None]


@_pytree_dataclass
class MultinomialLoss(Loss):
    """Softmax cross-entropy ``f(y, z) = logsumexp(z) - z[y]`` for labels in ``{0, ..., K-1}``.

    Coefficients have shape ``(n_features, n_classes)``; the curvature bound 1/2 is Böhning's.

    Args:
      n_classes: ``K`` (static). :func:`jaxreg.solve` fills it in from ``y`` when ``None``.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> round(float(jr.MultinomialLoss(3)(0, jnp.zeros(3))), 6)
      1.098612
    """

    n_classes: int | None = _static(None)

    @property
    def n_outputs(self) -> int:
        if self.n_classes is None:
            raise ValueError("MultinomialLoss: n_classes is unknown; pass it or let jaxreg.solve infer it")
        return self.n_classes

    def __call__(self, y: ArrayLike, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        y = jnp.broadcast_to(jnp.asarray(y, jnp.int32), z.shape[:-1])
        return optax.losses.softmax_cross_entropy_with_integer_labels(z, y)

    def conjugate(self, y: ArrayLike, v: ArrayLike) -> Array:
        v = jnp.asarray(v)
        y = jnp.broadcast_to(jnp.asarray(y, jnp.int32), v.shape[:-1])
        p = v + jax.nn.one_hot(y, v.shape[-1], dtype=v.dtype)
        tol = 64 * jnp.finfo(v.dtype).eps
        inside = jnp.all(p >= -tol, axis=-1) & (jnp.abs(jnp.sum(p, axis=-1) - 1.0) <= tol)
        pc = jnp.clip(p, 0.0, 1.0)
        return jnp.where(inside, jnp.sum(xlogy(pc, pc), axis=-1), jnp.inf)

    def curvature(self, y: ArrayLike, z: ArrayLike) -> Array:
        return jnp.full(jnp.shape(z)[:-1], 0.5, jnp.asarray(z).dtype)

    def _local_curvature(self, y: Array, z: Array) -> Array:
        # the Hessian diag(p) - p p.T has row sums of absolute values 2 p_k (1 - p_k) (Gershgorin)
        p = jax.nn.softmax(z, axis=-1)
        return jnp.minimum(jnp.max(2.0 * p * (1.0 - p), axis=-1), 0.5)

    def intercept_only(self, y: ArrayLike, s: ArrayLike) -> Array:
        freq = jnp.sum(s[:, None] * jax.nn.one_hot(y, self.n_outputs, dtype=s.dtype), axis=0)
        logf = jnp.log(freq)
        return logf - jnp.mean(logf)

    def check_target(self, y: np.ndarray) -> np.ndarray:
        if not np.all(np.equal(np.mod(y, 1), 0)) or np.any(y < 0):
            raise ValueError("MultinomialLoss: y must hold integer class labels 0..K-1")
        k = int(np.max(y)) + 1
        if self.n_classes is not None and k > self.n_classes:
            raise ValueError(f"MultinomialLoss: label {k - 1} out of range for n_classes={self.n_classes}")
        if np.unique(y).size < 2:
            raise ValueError("MultinomialLoss: y holds a single class")
        missing = np.setdiff1d(np.arange(self.n_classes or k), y)
        if missing.size:
            raise ValueError(
                f"MultinomialLoss: y has no sample of class(es) {missing.astype(int).tolist()}; labels must be "
                "0..K-1 with every class present (an absent class has intercept -inf)"
            )
        return y

    def _value(self, y: Array, z: Array) -> Array:
        return self(y[:, None], z)

    def _conjugate(self, y: Array, v: Array) -> Array:
        return self.conjugate(y[:, None], v)

    def _curvature(self, y: Array, z: Array) -> Array:
        return self.curvature(y[:, None], z)


def with_target(loss: Loss, y: np.ndarray) -> Loss:
    """Fill in what a loss infers from the targets (the number of classes)."""
    if isinstance(loss, MultinomialLoss) and loss.n_classes is None:
        return dataclasses.replace(loss, n_classes=int(np.max(y)) + 1)
    return loss

