"""Batched FISTA with adaptive restart and backtracking, stopping on a duality gap.

The objective (scikit-learn's convention, see ``DESIGN.md``) is::

    P(w, b) = sum_i s_i f(y_i, x_i @ w + b) / sum(s) + g(w)

:func:`solve` fits one penalty, or a whole batch of them when the penalty's leaves carry a leading
batch axis (``jr.L1(alpha=jnp.array([...]))``).  The batch is written in matrix form: the coefficients
of all lanes form one ``(n_features, n_lanes)`` matrix, so one iteration costs two matrix products
``X @ W`` and ``X.T @ G``, and a single ``lax.while_loop`` runs while any lane is unconverged; finished
lanes are frozen.  Convergence is checked every ``check_every`` iterations.

Stopping rule.  With ``u = -f'(y, z)`` and ``v = X.T @ (s * u) / sum(s)``, the dual point ``c * u``
(``c`` in ``(0, 1]`` scales ``v`` into the penalty's dual ball) gives the Fenchel dual value
``D = -sum_i s_i f*(y_i, -c u_i) / sum(s) - g*(c v)`` and the gap ``P - D >= 0``.  The constraints that
the intercept and unpenalized features put on the dual point hold at the optimum; during the
iterations their residual ``t = w_free @ v_free + b * mean_s(u)`` is added as ``c t + |c t|``, and so is
the squared proximal-gradient mapping restricted to the free coordinates and the intercept,
``L * ||w_free - prox(w_free + v_free / L)||**2 + mean_s(u)**2 / L``, which is zero only where they are
stationary (``t`` alone is zero at ``w_free = 0, b = 0`` whatever the gradient); the reported gap is a
sum of non-negative terms that vanishes exactly at the solution.  A lane stops
when its gap is at most ``tol * scale`` with ``scale = 2 * mean_s f(y, b0)``, the deviance of the
intercept-only model; for squared loss that is ``||y - mean(y)||**2 / n``, scikit-learn's meaning of
``tol``.  For squared loss the intercept is eliminated in closed form (``b = mean_s(y - X @ w)``),
exactly as centering does.  A custom loss without a conjugate stops on the norm of the
proximal-gradient mapping instead.
"""

from __future__ import annotations

import enum
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _validation as V
from .losses import Loss, SquaredLoss, with_target
from .penalties import L1, Penalty, check_penalty

__all__ = ["solve", "Result", "Status"]

Array = jax.Array


class Status(enum.IntEnum):
    """Why a lane stopped."""

    CONVERGED = 0
    MAX_ITER = 1
    NONFINITE = 2


class Result(NamedTuple):
    """Solution of :func:`solve`.

    Attributes:
      coef: ``batch_shape + (n_features,)``, or ``batch_shape + (n_features, n_classes)`` (multinomial).
      intercept: ``batch_shape``, or ``batch_shape + (n_classes,)``.
      n_iter: iterations run per lane.
      gap: duality gap reached (gradient-mapping norm for a loss without conjugate).
      converged: ``gap <= tol * scale`` reached before ``max_iter``, with finite iterates.
      status: :class:`Status` code per lane (0 converged, 1 max_iter, 2 non-finite).
    """

    coef: Array
    intercept: Array
    n_iter: Array
    gap: Array
    converged: Array
    status: Array


# -- data access: every product with X goes through these two helpers --------------------------


def matmul(X: Array, W: Array) -> Array:
    """``X @ W`` for ``W`` of shape ``(n_features, *lanes)`` -> ``(n_samples, *lanes)``."""
    p = W.shape[0]
    return (X @ W.reshape(p, -1)).reshape((X.shape[0],) + W.shape[1:])


def rmatmul(X: Array, G: Array) -> Array:
    """``X.T @ G`` for ``G`` of shape ``(n_samples, *lanes)`` -> ``(n_features, *lanes)``."""
    n = G.shape[0]
    return (X.T @ G.reshape(n, -1)).reshape((X.shape[1],) + G.shape[1:])


class _Config(NamedTuple):
    """Static configuration of one compiled solver."""

    intercept: str  # "none" | "closed" | "grad"
    max_iter: int
    check_every: int


def _intercept_mode(loss: Loss, fit_intercept: bool) -> str:
    if not fit_intercept:
        return "none"
    return "closed" if loss.closed_form_intercept else "grad"


def lipschitz(X: Array, s: Array, mode: str, n_power: int = 40) -> Array:
    """Largest eigenvalue of the weighted Gram matrix of the design, per weight column.

    ``s`` has shape ``(n_samples, S)``; the design is ``X`` centered with weights ``s`` when the
    intercept is eliminated in closed form, ``[X, 1]`` when it is a free variable, else ``X``.
    Power iteration from a fixed random start: a lower bound that converges from below, which the
    backtracking of the solver corrects.
    """
    p = X.shape[1]
    extra = 1 if mode == "grad" else 0
    key = jax.random.PRNGKey(0)
    v0 = jax.random.normal(key, (p + extra, s.shape[1]), X.dtype)

    def apply(v: Array) -> Array:
        z = X @ v[:p]
        if mode == "grad":
            z = z + v[p]
        if mode == "closed":
            z = z - jnp.sum(s * z, axis=0)
        r = s * z
        if mode == "closed":
            r = r - s * jnp.sum(r, axis=0)
        out = X.T @ r
        if mode == "grad":
            out = jnp.concatenate([out, jnp.sum(r, axis=0, keepdims=True)], axis=0)
        return out

    def body(_: int, v: Array) -> Array:
        w = apply(v)
        return w / jnp.maximum(jnp.linalg.norm(w, axis=0), jnp.finfo(X.dtype).tiny)

    v = jax.lax.fori_loop(0, n_power, body, v0 / jnp.linalg.norm(v0, axis=0))
    return jnp.sum(v * apply(v), axis=0)


class _State(NamedTuple):
    W: Array  # (p, B, K) current iterate x_k
    b: Array  # (B, K)
    Z: Array  # (n, B, K) = X W + b
    F: Array  # (B,) smooth part at x_k
    Wy: Array  # extrapolated point y_k
    by: Array
    Zy: Array
    t: Array  # (B,) momentum
    L: Array  # (B,) step = 1 / L
    n_iter: Array  # (B,) int32
    done: Array  # (B,) bool
    crit: Array  # (B,) gap (or gradient-mapping norm)
    status: Array  # (B,) int32


def _lane_vmap(fn: Any) -> Any:
    """Map a per-lane penalty method over lanes: penalty leaves on axis 0, arrays on axis 1."""
    return jax.vmap(fn, in_axes=(0, 1), out_axes=0)


def _dot(a: Array, b: Array) -> Array:
    """Per-lane inner product of ``(p, B, K)`` arrays -> ``(B,)``."""
    return jnp.sum(a * b, axis=(0, 2))


def fista(
    X: Array,
    y: Array,
    s: Array,
    loss: Loss,
    penalty: Penalty,
    W0: Array,
    b0: Array,
    L0: Array,
    tol_abs: Array,
    cfg: _Config,
) -> _State:
    """Run batched FISTA from ``(W0, b0)``; every lane has its own step, restart and stopping test.

    Shapes: ``X (n, p)``, ``y (n,)``, ``s (n, B)`` normalized per lane, ``W0 (p, B, K)``,
    ``b0 (B, K)``, ``L0`` and ``tol_abs`` ``(B,)``; ``penalty`` leaves have leading axis ``B``.
    """
    dtype = X.dtype
    eps = jnp.finfo(dtype).eps
    mode = cfg.intercept

    def smooth(Z: Array) -> Array:
        return jnp.sum(s * loss._value(y, Z), axis=0)

    def with_intercept(XW: Array, b: Array) -> tuple[Array, Array]:
        if mode == "closed":
            b = jnp.sum(s[..., None] * (y[:, None, None] - XW), axis=0)
        elif mode == "none":
            b = jnp.zeros_like(b)
        return XW + b[None], b

    value = _lane_vmap(lambda pen, w: pen.value(w))
    dual = _lane_vmap(lambda pen, v: pen.dual(v))
    unpenalized = _lane_vmap(lambda pen, w: pen.unpenalized(w))

    def prox_lanes(V: Array, step: Array) -> Array:
        return jax.vmap(lambda pen, v, st: pen.prox(v, st), in_axes=(0, 1, 0), out_axes=1)(penalty, V, step)

    def criterion(W: Array, b: Array, Z: Array, F: Array, L: Array) -> Array:
        u = -jax.grad(lambda Z_: jnp.sum(loss._value(y, Z_)))(Z)
        su = s[..., None] * u
        v = rmatmul(X, su)
        if not loss.has_dual:
            step = 1.0 / L
            gb = -jnp.sum(su, axis=0)
            Wn = prox_lanes(W + step[None, :, None] * v, step)
            gm = jnp.max(jnp.abs(W - Wn), axis=(0, 2)) * L
            if mode == "grad":
                gm = jnp.maximum(gm, jnp.max(jnp.abs(gb), axis=-1))
            return gm
        c, conj_g = dual(penalty, v)
        fconj = jnp.sum(jnp.where(s > 0, s * loss._conjugate(y, -c[None, :, None] * u), 0.0), axis=0)
        P = F + value(penalty, W)
        D = -fconj - conj_g
        free = jnp.moveaxis(unpenalized(penalty, W), 0, 1)  # (p, B, K)
        t = jnp.sum(jnp.where(free, W * v, 0.0), axis=(0, 2))
        t = t + jnp.sum(b * jnp.sum(su, axis=0), axis=-1)
        ct = c * t
        # t vanishes whenever w_free = 0 and b = 0, stationary or not: the squared prox-gradient
        # mapping on the free coordinates (and the intercept) is what certifies v_free = 0 there.
        step = 1.0 / L
        G = jnp.where(free, W - prox_lanes(W + step[None, :, None] * v, step), 0.0)
        residual = L * _dot(G, G)
        if mode == "grad":
            residual = residual + step * jnp.sum(jnp.sum(su, axis=0) ** 2, axis=-1)
        return P - D + ct + jnp.abs(ct) + residual

    def check(st: _State) -> _State:
        crit = criterion(st.W, st.b, st.Z, st.F, st.L)
        converged = crit <= tol_abs
        bad = ~jnp.isfinite(crit) | ~jnp.isfinite(st.L) | (st.L > L0 * 1e30)
        out_of_iter = st.n_iter >= cfg.max_iter
        status = jnp.where(
            converged & ~bad,
            Status.CONVERGED,
            jnp.where(bad, Status.NONFINITE, Status.MAX_ITER),
        ).astype(jnp.int32)
        stop = (converged | bad | out_of_iter) & ~st.done
        return st._replace(
            done=st.done | stop,
            crit=jnp.where(st.done, st.crit, crit),
            status=jnp.where(stop, status, st.status),
        )

    def step(st: _State) -> _State:
        active = ~st.done & (st.n_iter < cfg.max_iter)
        Fy, pullback = jax.vjp(smooth, st.Zy)
        (Gz,) = pullback(jnp.ones_like(Fy))
        gW = rmatmul(X, Gz)
        gb = jnp.sum(Gz, axis=0)
        stepsize = 1.0 / st.L
        Wn = prox_lanes(st.Wy - stepsize[None, :, None] * gW, stepsize)
        bn = st.by - stepsize[:, None] * gb
        Zn, bn = with_intercept(matmul(X, Wn), bn)
        Fn = smooth(Zn)
        dW = Wn - st.Wy
        Q = Fy + _dot(gW, dW) + 0.5 * st.L * _dot(dW, dW)
        if mode == "grad":
            db = bn - st.by
            Q = Q + jnp.sum(gb * db, axis=-1) + 0.5 * st.L * jnp.sum(db * db, axis=-1)
        finite = jnp.isfinite(Fn) & jnp.all(jnp.isfinite(Wn), axis=(0, 2))
        # Rounding in F is about eps * sum_i |z_i f'(z_i)| s_i, not eps * |F|: once F is small next to
        # its terms, a test at eps * |F| rejects every step on rounding alone and L grows without end.
        noise = jnp.abs(Fy) + jnp.sum(jnp.abs(st.Zy * Gz), axis=(0, 2))
        ok = finite & (Fn <= Q + 16 * eps * noise)
        accept = active & ok

        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * st.t**2))
        beta = (st.t - 1.0) / t_next
        # Gradient-based adaptive restart (O'Donoghue & Candes, 2015).
        restart = _dot(st.Wy - Wn, Wn - st.W) + jnp.sum((st.by - bn) * (bn - st.b), axis=-1) > 0
        beta = jnp.where(restart, 0.0, beta)
        t_next = jnp.where(restart, 1.0, t_next)

        lane = lambda a: a[None, :, None]  # noqa: E731
        Wy = Wn + lane(beta) * (Wn - st.W)
        by = bn + beta[:, None] * (bn - st.b)
        Zy = Zn + lane(beta) * (Zn - st.Z)

        def pick(new: Array, old: Array, axis_lane: int) -> Array:
            shape = [1] * new.ndim
            shape[axis_lane] = -1
            return jnp.where(accept.reshape(shape), new, old)

        return st._replace(
            W=pick(Wn, st.W, 1),
            b=pick(bn, st.b, 0),
            Z=pick(Zn, st.Z, 1),
            F=pick(Fn, st.F, 0),
            Wy=pick(Wy, st.Wy, 1),
            by=pick(by, st.by, 0),
            Zy=pick(Zy, st.Zy, 1),
            t=pick(t_next, st.t, 0),
            L=jnp.where(active & ~ok, 2.0 * st.L, st.L),
            n_iter=st.n_iter + active.astype(jnp.int32),
        )

    Z0, b0 = with_intercept(matmul(X, W0), b0)
    B = W0.shape[1]
    st = _State(
        W=W0, b=b0, Z=Z0, F=smooth(Z0), Wy=W0, by=b0, Zy=Z0,
        t=jnp.ones(B, dtype), L=L0, n_iter=jnp.zeros(B, jnp.int32),
        done=jnp.zeros(B, bool), crit=jnp.full(B, jnp.inf, dtype),
        status=jnp.full(B, Status.MAX_ITER, jnp.int32),
    )  # fmt: skip
    st = check(st)

    def body(st: _State) -> _State:
        st = jax.lax.fori_loop(0, cfg.check_every, lambda _, x: step(x), st)
        return check(st)

    return jax.lax.while_loop(lambda st: ~jnp.all(st.done), body, st)


def _initial_intercept(loss: Loss, y: Array, s: Array, mode: str, K: int) -> Array:
    """Intercept-only model per weight column: ``(S, K)``; zeros without intercept."""
    if mode == "none":
        return jnp.zeros((s.shape[1], K), s.dtype)
    return jax.vmap(lambda sc: loss.intercept_only(y, sc), in_axes=1)(s).astype(s.dtype)


def tol_scale(loss: Loss, y: Array, s: Array, b0: Array) -> Array:
    """``2 * mean_s f(y, b0)`` per weight column, floored at the float resolution of ``mean_s y**2``."""
    z = jnp.broadcast_to(b0[None], (y.shape[0],) + b0.shape)
    null = jnp.sum(s * loss._value(y, z), axis=0)
    floor = jnp.finfo(s.dtype).eps * jnp.sum(s * y[:, None] ** 2, axis=0) + jnp.finfo(s.dtype).tiny
    return jnp.maximum(2.0 * null, floor)


@functools.partial(jax.jit, static_argnames=("cfg", "B"))
def _solve_batched(
    X: Array,
    y: Array,
    s: Array,
    loss: Loss,
    penalty: Penalty,
    W0: Array | None,
    b0: Array | None,
    tol: Array,
    cfg: _Config,
    B: int,
) -> _State:
    """Jitted core: ``s (n, S)`` with ``S`` in ``{1, B}``; ``penalty`` leaves broadcast to ``(B,)``."""
    n, p = X.shape
    K = loss.n_outputs
    S = s.shape[1]
    bnull = _initial_intercept(loss, y, s, cfg.intercept, K)  # (S, K)
    tol_abs = jnp.broadcast_to(tol * tol_scale(loss, y, s, bnull), (B,))
    lam = lipschitz(X, s, cfg.intercept)  # (S,)
    if W0 is None:
        W0 = jnp.zeros((p, B, K), X.dtype)
    if b0 is None:
        b0 = jnp.broadcast_to(bnull, (B, K)) if S == 1 else bnull
    Z0 = matmul(X, W0) + b0[None]
    curv = jnp.max(jnp.where(s > 0, loss._curvature(y, Z0), 0.0), axis=0)
    L0 = 1.05 * jnp.broadcast_to(lam, (B,)) * curv
    L0 = jnp.maximum(L0, jnp.finfo(X.dtype).tiny)
    sB = jnp.broadcast_to(s, (n, B))
    return fista(X, y, sB, loss, penalty, W0, b0, L0, tol_abs, cfg)


def solve(
    X: ArrayLike,
    y: ArrayLike,
    loss: Loss | None = None,
    penalty: Penalty | None = None,
    *,
    fit_intercept: bool = True,
    sample_weight: ArrayLike | None = None,
    tol: float = 1e-4,
    max_iter: int = 10_000,
    coef_init: ArrayLike | None = None,
    intercept_init: ArrayLike | None = None,
    check_every: int = 10,
) -> Result:
    r"""Minimize ``sum_i s_i loss(y_i, x_i @ w + b) / sum(s) + penalty(w)`` over ``(w, b)``.

    Batched FISTA with adaptive restart and backtracking (see the module docstring for the stopping
    rule).  When the penalty's leaves have a leading batch axis, every member of the batch is fitted
    in the same compiled call, each with its own step size and stopping test.

    Args:
      X: design ``(n_samples, n_features)``.
      y: targets ``(n_samples,)`` (labels for logistic and multinomial, counts for Poisson).
      loss: a :mod:`jaxreg.losses` loss; default :class:`~jaxreg.SquaredLoss`.
      penalty: a :mod:`jaxreg.penalties` penalty; default ``L1(alpha=1.0)``.
      fit_intercept: fit an unpenalized intercept ``b``.
      sample_weight: non-negative ``(n_samples,)``; normalized, so integer weights equal repeated rows.
      tol: stop when the duality gap is at most ``tol * 2 * mean_s loss(y, b0)`` (for squared loss
        ``tol * ||y - mean(y)||**2 / n``: scikit-learn's meaning).  Traced: a new value never recompiles.
      max_iter: maximal number of iterations per lane (static).
      coef_init, intercept_init: warm start, shaped like the result's ``coef`` and ``intercept``.
      check_every: iterations between two convergence checks (static).

    Returns:
      :class:`Result` with ``coef`` of shape ``batch_shape + (n_features,)`` (``+ (n_classes,)`` for
      multinomial) and the per-lane ``intercept``, ``n_iter``, ``gap``, ``converged``, ``status``.

    Example:
      >>> import numpy as np, jaxreg as jr
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((50, 5)); y = X[:, 0] * 2.0 + 0.1 * rng.standard_normal(50)
      >>> res = jr.solve(X, y, jr.SquaredLoss(), jr.L1(alpha=0.1))
      >>> bool(res.converged), int((res.coef != 0).sum())
      (True, 1)
    """
    loss = SquaredLoss() if loss is None else loss
    penalty = L1() if penalty is None else penalty
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a jaxreg loss, got {loss!r}")
    X, y, s, loss = prepare_data(X, y, loss, sample_weight)
    V.check_tol_max_iter(tol, max_iter)
    V.check_positive_int("check_every", check_every)
    n, p = X.shape
    check_penalty(penalty, p)
    batch_shape = penalty.batch_shape
    B = int(np.prod(batch_shape, dtype=int))
    pen = penalty.broadcast(batch_shape, p, X.dtype)
    pen = jax.tree_util.tree_map(lambda a: a.reshape((B,) + a.shape[len(batch_shape) :]), pen)
    K = loss.n_outputs
    W0 = b0 = None
    coef_shape = batch_shape + ((p,) if K == 1 else (p, K))
    if coef_init is not None:
        W0 = jnp.asarray(coef_init, X.dtype)
        if W0.size != B * p * K:
            raise ValueError(f"coef_init must have shape {coef_shape} like the result's coef, got {W0.shape}")
        W0 = jnp.moveaxis(W0.reshape((B, p, K)), 0, 1)
    if intercept_init is not None:
        b0 = jnp.asarray(intercept_init, X.dtype)
        if b0.size not in (B, B * K):
            shape = batch_shape + ((K,) if K > 1 else ())
            raise ValueError(f"intercept_init must have shape {shape} like the result's intercept, got {b0.shape}")
        b0 = jnp.broadcast_to(b0.reshape(batch_shape + (-1,)), batch_shape + (K,)).reshape(B, K)
    cfg = _Config(_intercept_mode(loss, fit_intercept), int(max_iter), int(check_every))
    st = _solve_batched(X, y, s[:, None], loss, pen, W0, b0, jnp.asarray(tol, X.dtype), cfg, B)
    return _result(st, batch_shape, loss, fit_intercept)


def prepare_data(X: Any, y: Any, loss: Loss, sample_weight: Any) -> tuple[Array, Array, Array, Loss]:
    """Validate and convert ``X``, ``y``, sample weights (normalized) and the loss' target info."""
    X = V.check_X(X)
    n = X.shape[0]
    y = V.check_y(y, n, X.dtype)
    yc = V.concrete(y)
    if yc is not None:
        loss.check_target(yc)
        loss = with_target(loss, yc)
    s = V.check_sample_weight(sample_weight, n, X.dtype)
    if loss.n_outputs > 1:
        y = y.astype(jnp.int32)
    return X, y, s, loss


def _result(st: _State, batch_shape: tuple[int, ...], loss: Loss, fit_intercept: bool) -> Result:
    K = loss.n_outputs
    coef = jnp.moveaxis(st.W, 1, 0)  # (B, p, K)
    b = st.b
    if K == 1:
        coef, b = coef[..., 0], b[..., 0]
    if not fit_intercept:
        b = jnp.zeros_like(b)
    shape = lambda a: a.reshape(batch_shape + a.shape[1:])  # noqa: E731
    return Result(
        coef=shape(coef),
        intercept=shape(b),
        n_iter=shape(st.n_iter),
        gap=shape(st.crit),
        converged=shape(st.status == Status.CONVERGED),
        status=shape(st.status),
    )
