r"""Derivatives of a fit by implicit differentiation on the support, and what is built on them.

:func:`jaxreg.solve` returns a ``coef`` and ``intercept`` that ``jax.grad``, ``jax.jacobian``,
``jax.jvp`` and ``jax.vmap`` differentiate with respect to the penalty's leaves (``alpha``,
``l1_ratio``, ``weights``), the sample weights, ``X`` and ``y``.  The while loop of the solver is never
differentiated; its result ``u* = (w*, b*)`` is treated as the solution of its optimality conditions.

The math.  Let ``theta`` collect the data and hyper-parameters, and
``G(u, theta) = sum_i s_i f(y_i, x_i @ w + b) / sum(s) + g(w)``.  The *support* ``S`` is the set of
coordinates that are free to move at the solution: the non-zero coefficients (for :class:`GroupLasso`,
every coefficient of a non-zero group), the unpenalized features (``weights == 0``) and the intercept.
Off ``S`` the coefficients are exactly zero and stay zero under a small change of ``theta`` (strict
complementarity, i.e. ``alpha`` not exactly at a kink of the path); on ``S`` the penalty is smooth and
the optimality condition is ``grad_S G(u*, theta) = 0``.  Differentiating it gives, for a tangent
``dtheta``,

.. math::

   \nabla^2_{SS} G \; du_S = -\,\partial_\theta \nabla_S G \; d\theta, \qquad du_{\bar S} = 0.

``nabla^2_SS G`` holds the Hessian of the loss term on the support (``X_S^T diag(s f'') X_S`` with the
intercept column) plus the curvature of the penalty there: 0 for L1, ``alpha (1 - l1_ratio) weights``
for the elastic net's ridge part, ``lambda_g / ||w_g|| (I - w_g w_g^T / ||w_g||^2)`` for an active group.
For L1, ``d(nabla_S g) / d alpha = weights_S * sign(w_S)``.  Every one of these terms is obtained by
automatic differentiation of ``G``; the system is a dense ``(p K + K) x (p K + K)`` matrix per fit whose
rows and columns off the support are replaced by the identity, so shapes stay static under ``jit``.
Without the restriction to the support the system is singular (L1 has no curvature) and the
derivatives would be meaningless.  For :class:`~jaxreg.MultinomialLoss` the intercepts are determined
up to a common shift; the system fixes ``sum(d intercept) = 0``, the solver's own normalization.

Limits.  The derivative is that of the exact solution whose support is the returned one, so its
accuracy follows the solver's ``tol``.  At a kink of the path (a coefficient entering or leaving the
support) the solution map is not differentiable and the one-sided derivative of the returned support
is given.  The system is singular when the solution is not unique (a lasso with more than
``n_samples`` non-zero coefficients).  The dense system costs ``O(n p^2 + p^3)`` per fit; lanes are
solved in chunks whose memory stays bounded.

Built on it: :func:`degrees_of_freedom` (the trace of the derivative of the fitted mean with respect
to ``y``) and :func:`information_criterion` (AIC / BIC of a batch of least-squares fits, scikit-learn's
``LassoLarsIC`` formula).

Example: the hypergradient of a validation error with respect to ``log(alpha)``, and gradient-based
tuning with optax.  ``alpha`` is traced, so the solver compiles once for all steps.

  >>> import jax, jax.numpy as jnp, numpy as np, optax, jaxreg as jr
  >>> rng = np.random.default_rng(0)
  >>> X = rng.standard_normal((50, 8))
  >>> y = X[:, :3] @ np.array([3.0, -2.0, 1.0]) + rng.standard_normal(50)
  >>> X_train, y_train, X_val, y_val = X[:25], y[:25], X[25:], y[25:]
  >>> def val_error(log_alpha):
  ...     res = jr.solve(X_train, y_train, jr.SquaredLoss(), jr.L1(alpha=jnp.exp(log_alpha)), tol=1e-10)
  ...     return jnp.mean((y_val - X_val @ res.coef - res.intercept) ** 2)
  >>> step = jax.value_and_grad(val_error)
  >>> opt = optax.sgd(1.0)
  >>> log_alpha = jnp.log(1.0); state = opt.init(log_alpha)
  >>> for _ in range(20):
  ...     value, grad = step(log_alpha)
  ...     updates, state = opt.update(grad, state)
  ...     log_alpha = optax.apply_updates(log_alpha, updates)
  >>> bool(val_error(log_alpha) < 0.5 * val_error(jnp.log(1.0)))
  True
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _validation as V
from ._precision import compiled
from .losses import Loss, SquaredLoss, with_target
from .penalties import L1, GroupLasso, Penalty, check_penalty

__all__ = ["degrees_of_freedom", "information_criterion"]

Array = jax.Array

# Lanes are mapped in chunks whose dense systems and Hessian products hold at most this many entries.
_CHUNK_ENTRIES = 2**26


def _unpack(u: Array, p: int, K: int) -> tuple[Array, Array]:
    return u[: p * K].reshape(p, K), u[p * K :]


def _smooth(u: Array, data: tuple, p: int, K: int) -> Array:
    """``sum_i s_i f(y_i, x_i @ w + b)`` for normalized ``s`` (one lane)."""
    X, y, s, loss, _ = data
    w, b = _unpack(u, p, K)
    z = X @ w + b
    return jnp.sum(s * loss._value(y, z[:, None, :])[:, 0])


def _objective(u: Array, data: tuple, p: int, K: int) -> Array:
    w, _ = _unpack(u, p, K)
    pen = data[4]
    return _smooth(u, data, p, K) + pen.value(w[:, 0] if K == 1 else w)


def _support(pen: Penalty, w: Array, fit_intercept: bool) -> Array:
    """Mask ``(p K + K,)`` of the coordinates free at the solution ``w`` of shape ``(p, K)``."""
    if isinstance(pen, GroupLasso):
        ids = jnp.asarray(pen._ids())
        active = (pen._group_sq_norms(w) > 0)[ids]
        nonzero = jnp.broadcast_to(active[:, None], w.shape)
    else:
        nonzero = w != 0
    free = nonzero | pen.unpenalized(w)
    return jnp.concatenate([free.ravel(), jnp.full(w.shape[1], fit_intercept)])


def _system(u: Array, data: tuple, mask: Array, p: int, K: int, fit_intercept: bool) -> Array:
    """``nabla^2_SS G`` with the identity off the support (and the multinomial intercept gauge)."""
    H = jax.hessian(_objective)(u, data, p, K)
    M = jnp.where(mask[:, None] & mask[None, :], H, jnp.eye(u.shape[0], dtype=u.dtype))
    if K > 1 and fit_intercept:
        e = jnp.zeros_like(u).at[p * K :].set(1.0 / math.sqrt(K))
        M = M + jnp.outer(e, e)
    return M


def _lane_tangent(fit_intercept: bool, data: tuple, w: Array, b: Array, ddata: tuple) -> tuple[Array, Array]:
    p, K = w.shape
    u = jnp.concatenate([w.ravel(), b])
    mask = _support(data[4], w, fit_intercept)
    M = _system(u, data, mask, p, K, fit_intercept)
    grad = jax.grad(_objective)
    _, r = jax.jvp(lambda d: grad(u, d, p, K), (data,), (ddata,))
    du = -jnp.linalg.solve(M, jnp.where(mask, r, 0.0))
    return _unpack(jnp.where(mask, du, 0.0), p, K)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _solution(fit_intercept: bool, data: tuple, W: Array, b: Array) -> tuple[Array, Array]:
    """Identity on the solver's output ``W (B, p, K)``, ``b (B, K)``; its derivative is implicit."""
    return W, b


def _map_lanes(fn: Any, data: tuple, W: Array, b: Array, *extra: tuple, entries: int = _CHUNK_ENTRIES) -> Any:
    """``fn(data_lane, w, b, *extra_lane)`` over lanes: penalty leaves (``data[4]``, ``extra[i][4]``),
    ``W`` and ``b`` carry the lane axis; chunks of lanes are vmapped, chunks run one after another."""
    B, p, K = W.shape
    n, m = data[0].shape[0], p * K + K
    chunk = max(1, min(B, entries // (m * (m + n))))

    def lane(args: tuple) -> Any:
        pen, w, b_, pens = args
        return fn(data[:4] + (pen,), w, b_, *(e[:4] + (q,) for e, q in zip(extra, pens)))

    return jax.lax.map(lane, (data[4], W, b, tuple(e[4] for e in extra)), batch_size=chunk)


@compiled(static_argnames=("fit_intercept",))
def _tangents(data: tuple, W: Array, b: Array, ddata: tuple, fit_intercept: bool) -> tuple[Array, Array]:
    return _map_lanes(functools.partial(_lane_tangent, fit_intercept), data, W, b, ddata)


@_solution.defjvp
def _solution_jvp(fit_intercept: bool, primals: tuple, tangents: tuple) -> tuple[tuple, tuple]:
    data, W, b = primals
    return (W, b), _tangents(data, W, b, tangents[0], fit_intercept=fit_intercept)


def _has_tracer(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def detach(tree: Any) -> Any:
    """``jax.lax.stop_gradient`` of the pytree ``tree``: the solver's inputs, so that its loop is never
    differentiated.  Without a JAX tracer in ``tree`` it is returned as is (no dispatch on the eager path).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxreg.implicit import detach
      >>> x = jnp.ones(2); detach((x, None))[0] is x
      True
    """
    return jax.lax.stop_gradient(tree) if _has_tracer(tree) else tree


def differentiable(
    result: Any,
    X: Array,
    y: Array,
    s: Array,
    loss: Loss,
    penalty: Penalty,
    fit_intercept: bool,
) -> Any:
    """Attach the implicit derivative to a solver result (used by :func:`jaxreg.solve`).

    ``result`` is a :class:`jaxreg.Result` computed from ``stop_gradient`` of the inputs; the returned
    result has the same values, and its ``coef`` and ``intercept`` carry the derivative of the
    solution map described in the module docstring with respect to ``X (n_samples, n_features)``,
    ``y``, the normalized sample weights ``s (n_samples,)``, the loss' leaves and the penalty's leaves
    (which carry a leading lane axis of size ``B``, the flattened batch).  ``n_iter``, ``gap``,
    ``converged`` and ``status`` are not differentiable.  Without a JAX tracer among the inputs the
    result is returned unchanged.

    Example (the lasso's coefficients are piecewise linear in ``alpha``):
      >>> import jax, numpy as np, jaxreg as jr
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((50, 8))
      >>> y = X[:, :3] @ np.array([3.0, -2.0, 1.0]) + rng.standard_normal(50)
      >>> coef = lambda a: jr.solve(X, y, jr.SquaredLoss(), jr.L1(alpha=a), tol=1e-12).coef
      >>> slope = jax.jacobian(coef)(0.5)
      >>> bool(np.allclose(coef(0.5) + 0.01 * slope, coef(0.51)))
      True
    """
    data = (X, y, s, loss, penalty)
    if not _has_tracer(data):
        return result
    p, K = X.shape[1], loss.n_outputs
    B = result.coef.size // (p * K)
    W = result.coef.reshape(B, p, K)
    b = result.intercept.reshape(B, K)
    W, b = _solution(fit_intercept, data, W, b)
    return result._replace(coef=W.reshape(result.coef.shape), intercept=b.reshape(result.intercept.shape))


# -- degrees of freedom -------------------------------------------------------------------------


def _lane_df(fit_intercept: bool, data: tuple, w: Array, b: Array) -> Array:
    p, K = w.shape
    u = jnp.concatenate([w.ravel(), b])
    mask = _support(data[4], w, fit_intercept)
    M = _system(u, data, mask, p, K, fit_intercept)
    both = mask[:, None] & mask[None, :]
    HF = jnp.where(both, jax.hessian(_smooth)(u, data, p, K), 0.0)
    n_intercept = (K - 1 if K > 1 else 1) if fit_intercept else 0
    return jnp.trace(jnp.linalg.solve(M, HF)) - n_intercept


@compiled(static_argnames=("fit_intercept",))
def _df_batched(data: tuple, W: Array, b: Array, fit_intercept: bool) -> Array:
    return _map_lanes(functools.partial(_lane_df, fit_intercept), data, W, b)


def degrees_of_freedom(
    X: ArrayLike,
    y: ArrayLike,
    loss: Loss | None,
    penalty: Penalty | None,
    result: Any,
    *,
    sample_weight: ArrayLike | None = None,
    fit_intercept: bool = True,
) -> Array:
    r"""Effective number of coefficients of a fit: the trace of the derivative of the fitted mean in ``y``.

    With ``S`` the support of the solution (see the module docstring), ``H_F`` the Hessian of the
    loss term ``sum_i s_i f(y_i, x_i @ w + b) / sum(s)`` in ``(w, b)`` and ``H_g`` the curvature of the
    penalty, both restricted to ``S`` and the intercept,

    .. math:: \mathrm{df} = \operatorname{tr}\big((H_F + H_g)_{SS}^{-1} (H_F)_{SS}\big) - c

    where ``c`` = 1 (``K - 1`` for ``K`` classes) with an intercept, else 0: the intercept's share,
    exactly 1, is not counted (scikit-learn's ``LassoLarsIC`` convention on centered data).  For the
    squared loss this is ``tr(d yhat / d y) - c`` with ``yhat = X @ coef + intercept``; for the
    canonical-link losses (logistic, Poisson, multinomial) the fitted mean is the loss' mean
    (``sigmoid(z)``, ``exp(z)``, ``softmax(z)``).  Special cases: the lasso gives the support size
    ``|S|`` (Zou, Hastie & Tibshirani, 2007); the elastic net with squared loss gives
    ``tr(Xc_S (Xc_S^T D Xc_S + alpha (1 - l1_ratio) diag(weights_S))^{-1} Xc_S^T D)`` with
    ``D = diag(s)`` and ``Xc`` centered with weights ``s``; ridge gives ``sum_k d_k / (d_k + alpha)``
    over the eigenvalues ``d_k`` of ``Xc^T D Xc``.

    Args:
      X: design ``(n_samples, n_features)``.
      y: targets ``(n_samples,)``.
      loss: the loss of the fit; default :class:`~jaxreg.SquaredLoss`.
      penalty: the penalty of the fit (its batch shape must broadcast to the result's); default
        ``L1(alpha=1.0)``.
      result: a :class:`jaxreg.Result` (anything with ``coef`` and ``intercept``) of that problem,
        ``coef`` of shape ``batch_shape + (n_features,)`` (``+ (n_classes,)`` for multinomial).
      sample_weight: the sample weights of the fit, ``(n_samples,)``.
      fit_intercept: whether the fit had an intercept.

    Returns:
      ``df`` of shape ``batch_shape``.

    Example:
      >>> import numpy as np, jax.numpy as jnp, jaxreg as jr
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((50, 8))
      >>> y = X[:, :3] @ np.array([3.0, -2.0, 1.0]) + rng.standard_normal(50)
      >>> pen = jr.L1(alpha=jnp.array([0.5, 0.05]))
      >>> res = jr.solve(X, y, jr.SquaredLoss(), pen, tol=1e-10)
      >>> jr.degrees_of_freedom(X, y, jr.SquaredLoss(), pen, res).round(6).tolist()
      [3.0, 6.0]
      >>> (res.coef != 0).sum(axis=1).tolist()
      [3, 6]
    """
    loss = SquaredLoss() if loss is None else loss
    penalty = L1() if penalty is None else penalty
    X = V.check_X(X)
    n, p = X.shape
    y = V.check_y(y, n, X.dtype)
    yc = V.concrete(y)
    if yc is not None:
        loss = with_target(loss, loss.check_target(yc))
    if loss.n_outputs > 1:
        y = y.astype(jnp.int32)
    s = V.check_sample_weight(sample_weight, n, X.dtype)
    check_penalty(penalty, p)
    K = loss.n_outputs
    coef = jnp.asarray(result.coef, X.dtype)
    batch_shape = coef.shape[: coef.ndim - (1 if K == 1 else 2)]
    B = int(np.prod(batch_shape, dtype=int))
    pen = penalty.broadcast(batch_shape, p, X.dtype)
    pen = jax.tree_util.tree_map(lambda a: a.reshape((B,) + a.shape[len(batch_shape) :]), pen)
    W = coef.reshape(B, p, K)
    b = jnp.broadcast_to(
        jnp.asarray(result.intercept, X.dtype).reshape(batch_shape + (-1,)), batch_shape + (K,)
    )
    df = _df_batched((X, y, s, loss, pen), W, b.reshape(B, K), fit_intercept=bool(fit_intercept))
    return df.reshape(batch_shape)


# -- information criteria -----------------------------------------------------------------------


def information_criterion(
    X: ArrayLike,
    y: ArrayLike,
    coef: ArrayLike,
    intercept: ArrayLike,
    criterion: str = "aic",
    *,
    df: ArrayLike | None = None,
    noise_variance: ArrayLike | None = None,
    fit_intercept: bool = True,
) -> Array:
    r"""AIC or BIC of a batch of least-squares fits (scikit-learn's ``LassoLarsIC.criterion_``).

    For each fit ``(coef, intercept)`` with residual sum of squares
    ``RSS = ||y - X @ coef - intercept||^2``,

    .. math:: \mathrm{IC} = n \log(2 \pi \sigma^2) + \mathrm{RSS} / \sigma^2 + c \cdot \mathrm{df}

    with ``c = 2`` (AIC) or ``c = log(n)`` (BIC), ``n = n_samples``.  ``df`` defaults to the number of
    coefficients with ``|coef_j| > eps`` (``eps`` of the dtype): the lasso's degrees of freedom, the
    intercept not counted; pass :func:`degrees_of_freedom` for other penalties.  ``sigma^2`` defaults
    to the unbiased noise variance of the least-squares fit,
    ``||yc - Xc beta_ols||^2 / (n - p - fit_intercept)`` with ``Xc, yc`` centered when
    ``fit_intercept`` (this needs ``n > p + fit_intercept``).  This takes the solutions, not the
    penalty, so it applies to a path (``coef`` of shape ``(n_alphas, n_features)``) from any source.

    Args:
      X: design ``(n_samples, n_features)``.
      y: targets ``(n_samples,)``.
      coef: ``batch_shape + (n_features,)``.
      intercept: ``batch_shape``.
      criterion: ``"aic"`` or ``"bic"``.
      df: degrees of freedom, broadcastable to ``batch_shape``.
      noise_variance: ``sigma^2``; estimated as above when ``None``.
      fit_intercept: whether the fits have an intercept (centering for the noise variance).

    Returns:
      the criterion, shape ``batch_shape``.

    Example:
      >>> import numpy as np, jax.numpy as jnp, jaxreg as jr
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((50, 8))
      >>> y = X[:, :3] @ np.array([3.0, -2.0, 1.0]) + rng.standard_normal(50)
      >>> res = jr.solve(X, y, jr.SquaredLoss(), jr.L1(alpha=jnp.array([0.5, 0.05])), tol=1e-10)
      >>> jr.information_criterion(X, y, res.coef, res.intercept, "bic").round(2).tolist()
      [194.5, 171.12]
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion must be 'aic' or 'bic', got {criterion!r}")
    X = V.check_X(X)
    n, p = X.shape
    y = V.check_y(y, n, X.dtype)
    coef = jnp.asarray(coef, X.dtype)
    if coef.shape[-1:] != (p,):
        raise ValueError(f"coef must have shape batch_shape + ({p},), got {coef.shape}")
    intercept = jnp.asarray(intercept, X.dtype)
    resid = y - jnp.einsum("np,...p->...n", X, coef) - intercept[..., None]
    rss = jnp.sum(resid**2, axis=-1)
    if df is None:
        df = jnp.sum(jnp.abs(coef) > jnp.finfo(X.dtype).eps, axis=-1)
    if noise_variance is None:
        dof = n - p - int(fit_intercept)
        if dof <= 0:
            raise ValueError(
                f"the noise variance cannot be estimated with n_samples={n} <= n_features + "
                f"fit_intercept={p + int(fit_intercept)}; pass noise_variance"
            )
        Xc, yc = (X - X.mean(axis=0), y - y.mean()) if fit_intercept else (X, y)
        beta = jnp.linalg.lstsq(Xc, yc)[0]
        noise_variance = jnp.sum((yc - Xc @ beta) ** 2) / dof
    noise_variance = jnp.asarray(noise_variance, X.dtype)
    factor = 2.0 if criterion == "aic" else math.log(n)
    return n * jnp.log(2 * jnp.pi * noise_variance) + rss / noise_variance + factor * jnp.asarray(df, X.dtype)
