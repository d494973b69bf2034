"""Regularization paths: ``alpha_max``, alpha grids and :func:`path`, one compiled program per path.

A path over ``n_alphas`` strengths (and optionally a grid of ``l1_ratios``) is solved in blocks of
``block_size`` alphas: the lanes of a block are fit together by the batched solver, and each block
starts from the solution at the smallest alpha of the block before it (``lax.scan`` down the path).
``block_size=None`` fits all alphas at once from zero instead.

Which wins (float64, tol 1e-4, 100 alphas down to 1e-3 alpha_max; ``benchmarks/run.py
--block-sizes``): warm-started blocks are faster than everything at once on every problem measured,
because the small alphas, which need most iterations, start close to their solution, and a block
runs only until its slowest lane converges.  The default ``block_size="auto"`` takes one alpha per
block on a CPU when the solver works on the design, 10 when it works on the Gram matrix, and 20 on
accelerators (:func:`_auto_block_size`).
``block_size=None`` is kept for accelerators with spare parallelism and few alphas.

With 16 lanes or more (``block_size``; 20 on accelerators), a warm-started path that the solver fits
on the design rather than its Gram matrix recycles its lanes (:func:`_recycled`): they run in rounds
of at most 40, 80, 160 ... iterations, and after each round a lane that finished its alpha takes
the next one, starting from the deepest iterate still in flight, where in a block it would wait for
the block's slowest lane.  Accelerators' time follows the batched iterations (the most iterations
of one lane, summed over the solves): with 20 lanes recycling took 0.67 to 0.79 times the blocks'
count on the benchmarks (wide, L1-logistic, 5-fold CV) and a median 0.83 times over 26 other
designs, 1.15 times at worst (:func:`_recycles`).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _validation as V
from ._precision import compiled
from . import solvers as S
from .losses import Loss, SquaredLoss
from .penalties import L1, ElasticNet, Penalty, check_penalty

__all__ = ["alpha_max", "alpha_grid", "path", "PathResult"]

Array = jax.Array


class PathResult(NamedTuple):
    """A regularization path.

    Attributes:
      alphas: ``(n_alphas,)``, or ``(n_l1_ratios, n_alphas)`` with a grid of l1_ratios.
      l1_ratios: ``(n_l1_ratios,)`` or ``None``.
      coef: ``alphas.shape + (n_features,)`` (``+ (n_classes,)`` for multinomial).
      intercept: ``alphas.shape`` (``+ (n_classes,)``).
      n_iter, gap, converged: per point of the path, shape ``alphas.shape``.
    """

    alphas: Array
    l1_ratios: Array | None
    coef: Array
    intercept: Array
    n_iter: Array
    gap: Array
    converged: Array


def _free_features(penalty: Penalty) -> bool:
    """Whether some features (or groups) are concretely unpenalized (weight 0)."""
    w = penalty.weights
    if w is None:
        return False
    c = V.concrete(w)
    return c is None or bool(np.any(c == 0))


def _grad_at_null(
    X: Array, y: Array, s: Array, loss: Loss, penalty: Penalty, mode: str, tol: Array, free: bool | None = None
) -> Array:
    """``v = X.T @ (s * u)`` with ``u = -f'(y, z)`` at the model with all penalized coefficients 0.

    The intercept and any unpenalized feature are fitted: in closed form (intercept only) or, with
    unpenalized features, by a solve with a strength so large that every penalized coefficient is 0.
    ``s`` is ``(n, S)``; returns ``(p, S, K)``.  ``free`` says whether some feature is unpenalized
    (decide it outside ``jit``: under it the penalty's weights are traced and would count as free).
    """
    n, p = X.shape
    K = loss.n_outputs
    Sn = s.shape[1]
    su = S.setup(X, y, s, loss, mode)
    W = jnp.zeros((p, Sn, K), X.dtype)
    b = su.b_null
    if free is None:
        free = _free_features(penalty)
    if free:
        # Strength far above any alpha_max: only the unpenalized coordinates move.
        v0 = S.rmatmul(X, s[..., None] * _neg_grad(loss, y, S.matmul(X, W) + b[None]))
        big = 1e6 * (jnp.max(jnp.abs(v0)) + 1.0)
        first = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a[:1], (Sn,) + a.shape[1:]), penalty)
        heavy = dataclasses.replace(first, alpha=jnp.full((Sn,), big, X.dtype))
        cfg = S._Config(mode, 10_000, 10)
        st = S.run(X, y, s, loss, heavy, W, b, su, tol, cfg)
        W, b = st.W, st.b
    # with every coefficient at 0 the image is the intercept: no pass over X
    Z = S.matmul(X, W) + b[None] if free else jnp.broadcast_to(b[None], (n,) + b.shape)
    if mode == "closed":
        Z = Z - jnp.sum(s[..., None] * (Z - y[:, None, None]), axis=0)[None]
    return S.rmatmul(X, s[..., None] * _neg_grad(loss, y, Z))


def _neg_grad(loss: Loss, y: Array, Z: Array) -> Array:
    return -jax.grad(lambda Z_: jnp.sum(loss._value(y, Z_)))(Z)


def _critical(penalty: Penalty, v: Array) -> Array:
    """``penalty.critical_alpha`` per lane: leaves ``(B, ...)``, ``v (p, B, K)`` -> ``(B,)``."""
    return jax.vmap(lambda pen, v_: pen.critical_alpha(v_), in_axes=(0, 1))(penalty, v)


def _unit_lanes(penalty: Penalty, p: int, dtype: Any) -> tuple[Penalty, tuple[int, ...]]:
    shape = penalty.batch_shape
    pen = penalty.broadcast(shape, p, dtype)
    B = int(np.prod(shape, dtype=int))

    pen = jax.tree_util.tree_map(lambda a: V.host_reshape(a, (B,) + a.shape[len(shape) :]), pen)
    return dataclasses.replace(pen, alpha=V.to_device(np.ones((B,), dtype))), shape


def alpha_max(
    X: ArrayLike,
    y: ArrayLike,
    loss: Loss | None = None,
    penalty: Penalty | None = None,
    *,
    fit_intercept: bool = True,
    sample_weight: ArrayLike | None = None,
) -> Array:
    r"""The smallest ``alpha`` for which every penalized coefficient is exactly zero.

    With the intercept and the unpenalized features (weight 0) fitted and all others at 0, let
    ``v = X.T @ (s * u) / sum(s)`` with ``u = -f'(y, z)``. Then, for the elastic-net family,
    ``alpha_max = max_j |v_j| / (l1_ratio * weights_j)`` over penalized ``j`` (``v_j`` instead of
    ``|v_j|`` with ``positive=True``; ``inf`` for ``l1_ratio = 0``), and for the group lasso
    ``alpha_max = max_g ||v_g|| / (weights_g * sqrt(|g|))``. For squared loss without weights this is
    scikit-learn's ``max |X_c.T y_c| / (n * l1_ratio)``.

    The penalty's ``alpha`` is ignored; its other leaves may carry a batch axis (e.g. a grid of
    l1_ratios), and the result has that batch shape.

    Example:
      >>> import numpy as np, jaxreg as jr
      >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([1.0, 2.0, 0.0])
      >>> round(float(jr.alpha_max(X, y)), 6)
      0.333333
    """
    loss = SquaredLoss() if loss is None else loss
    penalty = L1() if penalty is None else penalty
    X, y, s, loss = S.prepare_data(X, y, loss, sample_weight)
    check_penalty(penalty, X.shape[1])
    unit, shape = _unit_lanes(penalty, X.shape[1], X.dtype)
    mode = S._intercept_mode(loss, fit_intercept)
    return _alpha_max(X, y, s, loss, unit, mode, _free_features(unit)).reshape(shape)


@compiled(static_argnames=("mode", "free"))
def _alpha_max(X: Array, y: Array, s: Array, loss: Loss, unit: Penalty, mode: str, free: bool) -> Array:
    """``alpha_max`` per lane of ``unit`` for the sample weights ``s (n,)``."""
    v = _grad_at_null(X, y, s[:, None], loss, unit, mode, jnp.asarray(1e-14, X.dtype), free)  # (p, 1, K)
    B = unit.alpha.shape[0]
    v = jnp.broadcast_to(v, v.shape[:1] + (B,) + v.shape[2:])
    return _critical(unit, v)


def alpha_grid(a_max: ArrayLike, n_alphas: int = 100, eps: float = 1e-3) -> Array:
    """``n_alphas`` values from ``a_max`` down to ``eps * a_max``, evenly spaced in log scale.

    ``a_max`` may carry leading axes (one grid per entry).  A concrete ``a_max`` gets its grid made on
    the host (a copy to the device, no compiled op); a traced one, under ``jit``, in the program.

    Example:
      >>> import jaxreg as jr
      >>> jr.alpha_grid(1.0, 3, eps=1e-2).tolist()
      [1.0, 0.1, 0.01]
    """
    a_max = a_max if isinstance(a_max, jax.Array) else V.to_device(a_max)
    a_max = a_max.astype(V.float_dtype(a_max))  # an int alpha_max gets a floating grid
    if n_alphas < 1:
        raise ValueError(f"n_alphas must be at least 1, got {n_alphas}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps}")
    host = V.concrete(a_max)
    if host is not None:
        return V.to_device((host[..., None] * np.logspace(0.0, np.log10(eps), n_alphas)).astype(host.dtype))
    frac = jnp.logspace(0.0, np.log10(eps), n_alphas, dtype=a_max.dtype)
    return a_max[..., None] * frac


def _resolve_alphas(
    alphas: Any, eps: float, X: Array, y: Array, s: Array, loss: Loss, unit: Penalty, mode: str
) -> Array:
    """Alpha grid of shape ``(n_l1, n_alphas)`` (descending) from an int or an explicit array."""
    n_l1 = unit.alpha.shape[0]
    if isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool):
        amax = np.asarray(_alpha_max(X, y, s, loss, unit, mode, _free_features(unit)))
        if not np.all(np.isfinite(amax)):
            raise ValueError("alpha_max is infinite (l1_ratio = 0, ridge): pass an explicit array of alphas")
        return alpha_grid(np.where(amax > 0, amax, np.finfo(amax.dtype).eps), int(alphas), eps)
    a = np.asarray(alphas, dtype=float)
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"alphas must be an int or a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("alphas must be finite and non-negative")
    a = np.broadcast_to(a, (n_l1, a.shape[-1]))
    return V.to_device(-np.sort(-a, axis=-1), X.dtype)


class _PathCfg(NamedTuple):
    solver: S._Config
    block_size: int  # alphas solved together per path (n_alphas = all at once)
    warm_start: bool
    batch_paths: bool = True  # independent paths as lanes of one solve, or one after the other


class _PathOut(NamedTuple):
    """Solutions of ``P`` independent paths of ``A`` alphas: lanes ordered ``(P, A)``."""

    W: Array  # (p, P * A, K)
    b: Array  # (P * A, K)
    n_iter: Array  # (P * A,)
    crit: Array
    status: Array


def _path_core(
    X: Array,
    y: Array,
    s: Array,
    loss: Loss,
    unit: Penalty,
    alphas: Array,
    tol: Array,
    cfg: _PathCfg,
    xtx: Array | None = None,
) -> _PathOut:
    """``P`` independent paths: sample weights ``s (n, P)``, unit penalties ``(P,)``, ``alphas (P, A)``.

    Blocks of ``cfg.block_size`` alphas of every path form the lanes of one batched solve; a
    ``lax.scan`` walks down the blocks, warm-starting each from the last solution of the block before.
    """
    n, p = X.shape
    K = loss.n_outputs
    P, A = alphas.shape
    blk = cfg.block_size
    n_blocks = -(-A // blk)
    a_pad = jnp.concatenate([alphas, jnp.repeat(alphas[:, -1:], n_blocks * blk - A, axis=1)], axis=1)
    a_blocks = jnp.moveaxis(a_pad.reshape(P, n_blocks, blk), 1, 0)  # (n_blocks, P, blk)
    mode = cfg.solver.intercept
    # one Gram matrix per path for all its blocks (when the solver uses it)
    gram = S._gram_model(X, y, s, mode, blk, xtx) if S.uses_gram(loss, mode, n, p) else None
    su = S.setup(X, y, s, loss, mode, None if gram is None else gram[0])  # per path
    per_lane = lambda a: jnp.repeat(a, blk, axis=0)  # noqa: E731  (P, ...) -> (P * blk, ...)
    su_l = jax.tree_util.tree_map(per_lane, su)
    s_l = jnp.repeat(s, blk, axis=1)
    base = jax.tree_util.tree_map(per_lane, unit)
    X_low = S.low_design(X, s, mode) if cfg.solver.mixed and gram is None else None  # once per path
    means = S.rmatmul(X, s) if mode != "none" and gram is None else None  # centers, once per path

    # lanes (P * blk) of (p or n, P * blk, K) -> the last lane of each path (p or n, P, K), and back
    last = lambda a: a.reshape(a.shape[:1] + (P, blk) + a.shape[2:])[:, :, -1]
    lanes = lambda a: jnp.repeat(a, blk, axis=1)

    def block(carry: tuple[Array, Array, S.Known], a_blk: Array) -> tuple[tuple[Array, Array, S.Known], _PathOut]:
        W_last, b_last, known = carry  # (p, P, K), (P, K), products of the last check at them
        pen = dataclasses.replace(base, alpha=a_blk.reshape(-1))
        W0 = lanes(W_last)
        b0 = jnp.repeat(b_last, blk, axis=0)
        # the first check of the block starts from the last check's products: no pass over X
        known0 = S.Known(lanes(known.Z), jnp.repeat(known.b, blk, axis=0), lanes(known.v))
        st = S.run(X, y, s_l, loss, pen, W0, b0, su_l, tol, cfg.solver, groups=P, gram=gram, X_low=X_low,
                   means=means, known=known0)
        out = _PathOut(st.W, st.b, st.n_iter, st.crit, st.status)
        if cfg.warm_start:
            k = st.known
            carry = (last(st.W), st.b.reshape(P, blk, K)[:, -1],
                     S.Known(last(k.Z), k.b.reshape(P, blk, K)[:, -1], last(k.v)))  # fmt: skip
        return carry, out

    W_init = jnp.zeros((p, P, K), X.dtype)
    gram1 = None  # the Gram model with one lane per path
    if gram is not None:
        gram1 = (S._Gram(gram[0].G, gram[0].q[:, ::blk], gram[0].yy[::blk]),) + gram[1:]
    init = (W_init, su.b_null, S.known_at(X, y, s, loss, mode, W_init, su.b_null, gram1, means))
    if _recycles(cfg, gram is not None, A):
        run = lambda pen, W0, b0, known, limit: S.run(  # noqa: E731
            X, y, s_l, loss, pen, W0, b0, su_l, tol, cfg.solver, groups=P, X_low=X_low, means=means,
            known=known, limit=limit)  # fmt: skip
        return _recycled(run, base, alphas, cfg, init)
    _, outs = jax.lax.scan(block, init, a_blocks)

    def unblock(a: Array, lane_axis: int) -> Array:
        """``(n_blocks, ..., P * blk, ...)`` -> ``(P * A, ...)`` with lanes ordered ``(P, A)``."""
        a = jnp.moveaxis(a, lane_axis + 1, 1)
        a = a.reshape((n_blocks, P, blk) + a.shape[2:])
        a = jnp.moveaxis(a, 0, 1).reshape((P, n_blocks * blk) + a.shape[3:])[:, :A]
        return a.reshape((P * A,) + a.shape[2:])

    return _PathOut(
        W=jnp.moveaxis(unblock(outs.W, 1), 0, 1),
        b=unblock(outs.b, 0),
        n_iter=unblock(outs.n_iter, 0),
        crit=unblock(outs.crit, 0),
        status=unblock(outs.status, 0),
    )


#: iterations of a recycled path's first round; each round a lane stays on the same alpha doubles it
_ROUND = 40
#: the fewest lanes a path recycles (:func:`_recycles`)
_RECYCLE_LANES = 16


def _recycles(cfg: _PathCfg, gram: bool, n_alphas: int) -> bool:
    """Whether a path's lanes are recycled (:func:`_recycled`) rather than solved in blocks.

    Down a warm-started path of more alphas than lanes, on the design (not the Gram matrix), with
    at least ``_RECYCLE_LANES`` lanes.  Batched iterations with the accelerators' loop structure and
    20 lanes (``benchmarks/recycling.py``, ``benchmarks/README.md``), ``tol=1e-4``: wide 440 against
    560 in blocks, L1-logistic 290 against 430, 5-fold CV 460 against 650.  Over 26 other designs
    (50 x 200 to 200 x 2000, 100 alphas, ``tol`` 1e-4 and 1e-6; 40 x 160 and 50 x 200, 60 alphas,
    ``tol=1e-5``) 0.39 to 1.15 times the blocks' count, median 0.83, above 1 for two.  With 10
    lanes 0.40 to 1.11 times, and with 5 lanes at ``tol=1e-8`` up to 1.74 times: a lane that starts
    early starts farther up the path, which costs most where each alpha needs long solves and few
    lanes share the wait.  On the Gram matrix (square) it took 410 against 370: blocks stay.  On an
    H200 the recycled wide path took 33.9 and 35.5 ms against 38.1 ms in blocks.
    """
    return cfg.warm_start and not gram and _RECYCLE_LANES <= cfg.block_size < n_alphas


def _recycled(
    run: Any, base: Penalty, alphas: Array, cfg: _PathCfg, init: tuple[Array, Array, S.Known]
) -> _PathOut:
    """``P`` paths of ``A`` alphas with ``cfg.block_size`` lanes in flight per path, recycled in rounds.

    A round is one batched solve (``run(penalty, W0, b0, known, limit)``, :func:`jaxreg.solvers.run`)
    of every lane, each limited to ``_ROUND * 2**k`` iterations, ``k`` the most rounds a lane in
    flight has spent on its alpha (rounds that double keep a lane that needs many from restarting
    FISTA's momentum often).  After a round each lane that finished its alpha (converged, stopped
    with another status, or spent ``max_iter`` over its rounds) stores its solution and takes the
    path's next alpha, starting from the iterate of the path's deepest lane still in flight (else
    from the deepest solution).  Blocks run until their slowest lane converges while their first
    lanes sit done; here those take up the next alphas.  ``n_iter`` of an alpha counts its
    iterations over all its rounds.  Other starts did no better (``benchmarks/README.md``): the
    candidate of smallest duality gap at the new alpha, restarting lanes in flight from newer
    solutions, or holding new alphas back while a lane needs long rounds.
    """
    W0, b0, k0 = init  # (p, P, K), (P, K), the products at them: one lane per path
    P, A = alphas.shape
    blk = cfg.block_size
    p, _, K = W0.shape
    dtype = W0.dtype
    max_iter = cfg.solver.max_iter
    path_of = jnp.repeat(jnp.arange(P), blk)  # lanes ordered (P, blk)
    lanes = lambda a: jnp.repeat(a, blk, axis=1)  # noqa: E731
    sink = P * A  # the slot of an output that a lane did not finish

    class Pool(NamedTuple):
        W: Array  # (p, P * blk, K): the lanes' iterates
        b: Array
        known: S.Known  # the products at them
        idx: Array  # (P * blk,): the alpha of each lane, A when idle
        age: Array  # rounds on that alpha
        spent: Array  # iterations on that alpha
        nxt: Array  # (P,): each path's next alpha
        out: _PathOut  # solutions ordered (P, A), and the sink

    def round_(pl: Pool) -> Pool:
        active = pl.idx < A
        k = jnp.minimum(jnp.max(jnp.where(active, pl.age, 0)), 20)
        limit = jnp.where(active, jnp.minimum(_ROUND * 2**k, max_iter - pl.spent), 0).astype(jnp.int32)
        pen = dataclasses.replace(base, alpha=alphas[path_of, jnp.minimum(pl.idx, A - 1)])
        st = run(pen, pl.W, pl.b, pl.known, limit)
        total = pl.spent + st.n_iter
        # no iteration in a round without an end: a guard against rounds that make no progress
        fin = active & ((st.status != S.Status.MAX_ITER) | (total >= max_iter) | (st.n_iter == 0))
        slot = jnp.where(fin, path_of * A + pl.idx, sink)
        o = pl.out
        out = _PathOut(o.W.at[:, slot].set(st.W), o.b.at[slot].set(st.b), o.n_iter.at[slot].set(total),
                       o.crit.at[slot].set(st.crit), o.status.at[slot].set(st.status))  # fmt: skip
        f = fin.reshape(P, blk).astype(jnp.int32)
        rank = jnp.cumsum(f, axis=1, dtype=jnp.int32) - 1
        idx = jnp.where(f > 0, jnp.minimum(pl.nxt[:, None] + rank, A), pl.idx.reshape(P, blk)).reshape(-1)
        # the source of each path's new lanes: its deepest lane in flight, else its deepest finished
        flying = (active & ~fin).reshape(P, blk)
        depth = jnp.where(active.reshape(P, blk), pl.idx.reshape(P, blk) + (A + 1) * flying, -1)
        src = jnp.argmax(depth, axis=1) + jnp.arange(P) * blk
        g = jnp.where(fin, src[path_of], jnp.arange(P * blk))
        take = lambda a: jnp.take(a, g, axis=1)  # noqa: E731
        known = S.Known(take(st.known.Z), st.known.b[g], take(st.known.v))
        return Pool(take(st.W), st.b[g], known, idx, jnp.where(fin, 0, pl.age + 1), jnp.where(fin, 0, total),
                    pl.nxt + jnp.sum(f, axis=1, dtype=jnp.int32), out)  # fmt: skip

    out0 = _PathOut(jnp.zeros((p, sink + 1, K), dtype), jnp.zeros((sink + 1, K), dtype),
                    jnp.zeros(sink + 1, jnp.int32), jnp.full(sink + 1, jnp.inf, dtype),
                    jnp.full(sink + 1, S.Status.MAX_ITER, jnp.int32))  # fmt: skip
    zero = jnp.zeros(P * blk, jnp.int32)
    known0 = S.Known(lanes(k0.Z), jnp.repeat(k0.b, blk, axis=0), lanes(k0.v))
    idx0 = jnp.tile(jnp.arange(blk, dtype=jnp.int32), P)
    nxt0 = jnp.full(P, blk, jnp.int32)
    pool = Pool(lanes(W0), jnp.repeat(b0, blk, axis=0), known0, idx0, zero, zero, nxt0, out0)
    o = jax.lax.while_loop(lambda pl: jnp.any(pl.idx < A), round_, pool).out
    return _PathOut(o.W[:, :sink], o.b[:sink], o.n_iter[:sink], o.crit[:sink], o.status[:sink])


def _path_group(
    X: Array, y: Array, s: Array, loss: Loss, unit: Penalty, alphas: Array, tol: Array, cfg: _PathCfg,
    xtx: Array | None = None,
) -> _PathOut:
    """Independent paths as lanes of the same solves, or one after the other (``lax.map``).

    Batched lanes share one working set (the union of their supports): on a device with spare
    parallelism that costs nothing, on a CPU it costs flops, so there the paths run in sequence.
    """
    if cfg.batch_paths or alphas.shape[0] == 1:
        return _path_core(X, y, s, loss, unit, alphas, tol, cfg, xtx)

    def one(args: tuple[Array, Penalty, Array]) -> _PathOut:
        s1, unit1, a1 = args
        one_unit = jax.tree_util.tree_map(lambda a: a[None], unit1)
        return _path_core(X, y, s1[:, None], loss, one_unit, a1[None], tol, cfg, xtx)

    out = jax.lax.map(one, (s.T, unit, alphas))  # leaves (P, ...) with lanes (A,) inside
    return _PathOut(
        W=jnp.moveaxis(out.W, 0, 1).reshape((out.W.shape[1], -1) + out.W.shape[3:]),
        b=out.b.reshape((-1,) + out.b.shape[2:]),
        n_iter=out.n_iter.reshape(-1),
        crit=out.crit.reshape(-1),
        status=out.status.reshape(-1),
    )


@compiled(static_argnames=("cfg", "n_devices"))
def _paths(
    X: Array,
    y: Array,
    s: Array,
    loss: Loss,
    unit: Penalty,
    alphas: Array,
    tol: Array,
    cfg: _PathCfg,
    n_devices: int = 1,
    xtx: Array | None = None,
) -> _PathOut:
    """:func:`_path_core`, with the independent paths sharded over the first ``n_devices`` devices.

    ``xtx``: ``X.T @ X`` when every path has uniform sample weights and the caller computed it.
    """
    P = alphas.shape[0]
    if n_devices <= 1:
        return _path_group(X, y, s, loss, unit, alphas, tol, cfg, xtx)
    pad = -P % n_devices
    take = jnp.concatenate([jnp.arange(P), jnp.zeros(pad, int)])
    s_, alphas_ = s[:, take], alphas[take]
    unit_ = jax.tree_util.tree_map(lambda a: a[take], unit)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:n_devices]), ("paths",))
    Pspec = jax.sharding.PartitionSpec
    out_specs = _PathOut(Pspec(None, "paths"), Pspec("paths"), Pspec("paths"), Pspec("paths"), Pspec("paths"))
    fn = jax.shard_map(
        lambda s_, unit_, a_: _path_group(X, y, s_, loss, unit_, a_, tol, cfg, xtx),
        mesh=mesh,
        in_specs=(Pspec(None, "paths"), Pspec("paths"), Pspec("paths")),
        out_specs=out_specs,
        check_vma=False,
    )
    out = fn(s_, unit_, alphas_)
    A = alphas.shape[1]
    return _PathOut(out.W[:, : P * A], out.b[: P * A], out.n_iter[: P * A], out.crit[: P * A], out.status[: P * A])


def path_threads(n_paths: int, n_devices: int, threads: int | str = "auto") -> int:
    """Host threads that run ``n_paths`` independent paths at once, each path a call of its own.

    On a CPU the solver's loop runs on one core but for the products over all of ``X``: the 5-fold
    CV of the wide benchmark kept 1.27 of this machine's 2 cores busy.  Two threads, each calling the
    same compiled path program on its own paths, took 0.50 s for six weighted paths of the wide
    benchmark against 0.85 s for the six in one program (``benchmarks/README.md``).  ``"auto"``: on a
    CPU backend, one thread per core the process may use; on accelerators 1, where the paths are
    lanes of one batched solve.  At most one thread per path, and 1 where ``n_devices > 1`` devices
    share the work (sharded paths or rows).
    """
    if isinstance(threads, str):
        if threads != "auto":
            raise ValueError(f"threads must be a positive int or 'auto', got {threads!r}")
        if jax.default_backend() != "cpu":
            return 1
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    elif isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads must be a positive int or 'auto', got {threads!r}")
    elif threads < 1:
        raise ValueError(f"threads must be a positive int or 'auto', got {threads!r}")
    return 1 if n_devices > 1 else max(1, min(n_paths, int(threads)))


def host_paths(
    s: Any, unit: Penalty, alphas: Any, data: tuple[Any, ...] = ()
) -> tuple[np.ndarray, Penalty, np.ndarray] | None:
    """Sample weights ``(n, P)``, unit penalties and alphas ``(P, A)`` on the host, or ``None`` when
    one of them or of ``data`` (``X``, ``y``) is traced: under a user's ``jit`` the paths are traced
    into the user's program, in the caller's thread, as one program would be."""
    if any(isinstance(a, jax.core.Tracer) for a in data):
        return None
    leaves = [V.concrete(a) for a in (s, alphas, *jax.tree_util.tree_leaves(unit))]
    if any(a is None for a in leaves):
        return None
    return leaves[0], jax.tree_util.tree_map(V.concrete, unit), leaves[1]


def threaded_paths(
    X: Array, y: Array, host: tuple[np.ndarray, Penalty, np.ndarray], loss: Loss, tol: Array, cfg: _PathCfg,
    threads: int, xtx: Array | None = None,
) -> list[_PathOut]:
    """The ``P`` paths of :func:`host_paths` data, each by its own call of :func:`_paths` (one compiled
    program for all), on ``threads`` host threads; each with :func:`~jaxreg.solvers.with_fallback`.

    The program is compiled once, before the threads start: threads that call a new program at the
    same moment may each compile it.  The threads run under the caller's ``jax.enable_x64`` and
    ``jax.default_device``, which are local to a thread (the ``jaxreg`` command fits in float64
    under ``jax.enable_x64``).
    """
    s, unit, alphas = host
    x64, device = jax.config.jax_enable_x64, jax.config.jax_default_device

    def inputs(j: int) -> tuple[Array, Penalty, Array]:
        unit_j = jax.tree_util.tree_map(lambda a: V.to_device(a[j : j + 1]), unit)
        return V.to_device(s[:, j : j + 1], X.dtype), unit_j, V.to_device(alphas[j : j + 1], X.dtype)

    def one(j: int) -> _PathOut:
        with jax.enable_x64(x64), jax.default_device(device):
            s_j, unit_j, a_j = inputs(j)
            return S.with_fallback(
                lambda fb: _paths(X, y, s_j, loss, unit_j, a_j, tol, _fallback(cfg, fb), 1, xtx),
                cfg.solver, (X, y), lambda out: out.status,
            )  # fmt: skip

    if threads > 1:
        # a CV on three threads compiled its path program twice now and then, under load
        s_0, unit_0, a_0 = inputs(0)
        _paths.lower(X, y, s_0, loss, unit_0, a_0, tol, _fallback(cfg, False), 1, xtx).compile()
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(alphas.shape[0])))


def join_paths(parts: tuple[_PathOut, ...]) -> _PathOut:
    """The lanes of :func:`threaded_paths`' results in path order, as :func:`_paths` gives them."""

    def lanes(name: str, axis: int) -> Array:
        return jnp.concatenate([getattr(o, name) for o in parts], axis=axis)

    return _PathOut(lanes("W", 1), lanes("b", 0), lanes("n_iter", 0), lanes("crit", 0), lanes("status", 0))


def shard_rows(n_devices: int, *arrays: Array) -> tuple[Array, ...]:
    """Pad the sample axis (axis 0) to a multiple of ``n_devices`` with zero rows and shard it.

    Padded rows get sample weight 0 (every weight array passed here must be padded with zeros), so
    they change nothing; the jitted solver is then partitioned by XLA, with the reductions over
    samples becoming cross-device sums.
    """
    n = arrays[0].shape[0]
    pad = -n % n_devices
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:n_devices]), ("rows",))
    out = []
    for a in arrays:
        a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
        spec = jax.sharding.PartitionSpec("rows", *([None] * (a.ndim - 1)))
        out.append(jax.device_put(a, jax.sharding.NamedSharding(mesh, spec)))
    return tuple(out)


def n_devices_for(devices: int | str | None) -> int:
    """Resolve the ``devices`` argument: ``"all"`` (default) uses every device of the default backend."""
    available = jax.device_count()
    if devices is None or devices == "all":
        return available
    if isinstance(devices, (int, np.integer)) and 1 <= devices <= available:
        return int(devices)
    raise ValueError(f"devices must be 'all' or an int in [1, {available}], got {devices!r}")


def _unit_with_l1_ratios(penalty: Penalty, l1_ratios: Any, p: int, dtype: Any) -> tuple[Penalty, Array | None]:
    if l1_ratios is None:
        unit, shape = _unit_lanes(penalty, p, dtype)
        if len(shape) > 1:
            raise ValueError("path: the penalty may carry at most one batch axis (a grid of l1_ratios)")
        rho = unit.l1_ratio if isinstance(penalty, ElasticNet) and shape else None
        return unit, rho
    if not isinstance(penalty, ElasticNet):
        raise ValueError("l1_ratios needs an ElasticNet penalty")
    rho = np.atleast_1d(np.asarray(l1_ratios, dtype=float))
    if rho.ndim != 1 or rho.size == 0 or np.any((rho < 0) | (rho > 1)) or not np.all(np.isfinite(rho)):
        raise ValueError(f"l1_ratios must be a non-empty 1-D array of values in [0, 1], got {l1_ratios!r}")
    pen = dataclasses.replace(penalty, l1_ratio=V.to_device(rho, dtype))
    unit, _ = _unit_lanes(pen, p, dtype)
    return unit, V.to_device(rho, dtype)


def path(
    X: ArrayLike,
    y: ArrayLike,
    loss: Loss | None = None,
    penalty: Penalty | None = None,
    *,
    alphas: int | ArrayLike = 100,
    eps: float = 1e-3,
    l1_ratios: ArrayLike | None = None,
    fit_intercept: bool = True,
    sample_weight: ArrayLike | None = None,
    tol: float = 1e-4,
    max_iter: int = 10_000,
    block_size: int | str | None = "auto",
    warm_start: bool = True,
    check_every: int = 10,
    devices: int | str = "all",
    shard: str = "paths",
    threads: int | str = "auto",
) -> PathResult:
    r"""Fit a whole regularization path in one compiled call.

    Minimizes ``sum_i s_i loss(y_i, x_i @ w + b) / sum(s) + penalty_alpha(w)`` for every alpha of the
    grid (and every l1_ratio of ``l1_ratios`` for an :class:`~jaxreg.ElasticNet`).

    Args:
      X, y, loss, penalty, fit_intercept, sample_weight, tol, max_iter, check_every: as in
        :func:`jaxreg.solve`; the penalty's ``alpha`` is replaced by the grid.
      alphas: an int (geometric grid from :func:`alpha_max` down to ``eps * alpha_max``, per
        l1_ratio, as scikit-learn) or an explicit array (sorted in decreasing order).
      eps: ratio of the smallest to the largest alpha of a generated grid.
      l1_ratios: optional grid of l1_ratios (ElasticNet only); the result gets a leading axis.
      block_size: alphas solved together per block (the batch, and so the memory, of one solve);
        ``None`` solves all alphas at once; ``"auto"`` (default): 1 on a CPU unless the solver
        works on the Gram matrix (squared loss, ``n_samples >= n_features``), else 10; 20 on
        accelerators.  From 16 lanes on, a warm-started path on the design recycles its lanes
        instead: a lane that finishes its alpha takes the next one at once (see the module's
        documentation).
      warm_start: start each block from the previous block's last solution (down the path).
      devices: ``"all"`` or a number of devices to use.
      shard: ``"paths"`` shards the independent paths (one per l1_ratio; per fold in
        :func:`~jaxreg.cross_validate`) over the devices with ``shard_map``, each device running its
        own loop; ``"rows"`` splits the samples of ``X`` over the devices instead (for ``n`` too large
        for one device), with the sums over samples reduced across devices.
      threads: host threads that fit the independent paths (one per l1_ratio) at once, each path a
        call of the same compiled program (:func:`path_threads`): ``"auto"`` (default) uses one per
        core on a CPU, and 1 (one program for all paths) on accelerators; always 1 where several
        devices share the work.

    Returns:
      :class:`PathResult`.

    Example:
      >>> import numpy as np, jaxreg as jr
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((40, 8)); y = X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(40)
      >>> res = jr.path(X, y, alphas=20)
      >>> res.coef.shape, bool(res.converged.all()), int((res.coef[0] != 0).sum())
      ((20, 8), True, 0)
    """
    loss = SquaredLoss() if loss is None else loss
    penalty = L1() if penalty is None else penalty
    X_in = X
    X, y, s, loss = S.prepare_data(X, y, loss, sample_weight)
    V.check_tol_max_iter(tol, max_iter, X.dtype)
    p = X.shape[1]
    check_penalty(penalty, p)
    unit, rho = _unit_with_l1_ratios(penalty, l1_ratios, p, X.dtype)
    mode = S._intercept_mode(loss, fit_intercept)
    grid = _resolve_alphas(alphas, eps, X, y, s, loss, unit, mode)
    cfg = _path_config(grid.shape[1], block_size, warm_start, mode, max_iter, check_every,
                       S.capacities(penalty, *X.shape), S.uses_gram(loss, mode, *X.shape),
                       S.mixed_precision(X.dtype, tol, X.shape))  # fmt: skip
    H = grid.shape[0]
    s_host = V.concrete(s)  # concrete weights are repeated on the host: no compiled op
    if s_host is None:
        s_paths = jnp.broadcast_to(s[:, None], (X.shape[0], H))
    else:
        s_host = np.repeat(s_host[:, None], H, axis=1)
        s_paths = V.to_device(s_host)
    n_dev = n_devices_for(devices)
    check_shard(shard)
    n_threads = path_threads(H, n_dev, threads)  # before rows sharding sets n_dev to 1
    xtx = None
    if shard == "rows":
        X, y, s_paths = shard_rows(n_dev, X, y, s_paths)
        n_dev = 1
    elif sample_weight is None and S.uses_gram(loss, mode, *X.shape):
        xtx = _host_gram(X_in, X.dtype)
    tol_ = V.to_device(tol, X.dtype)
    host = host_paths(s_paths if s_host is None else s_host, unit, grid, (X, y)) if n_threads > 1 else None
    if host is not None:
        parts = threaded_paths(X, y, host, loss, tol_, cfg, n_threads, xtx)
        return _join_program(tuple(parts), grid, rho, loss, bool(fit_intercept))
    res, _ = S.with_fallback(
        lambda fb: _path_program(X, y, s_paths, loss, unit, grid, tol_, _fallback(cfg, fb), n_dev, xtx, rho,
                                 bool(fit_intercept)),
        cfg.solver, (X, y, s_paths, unit, grid, penalty), lambda out: out[1],
    )  # fmt: skip
    return res


@compiled(static_argnames=("cfg", "n_devices", "fit_intercept"))
def _path_program(
    X: Array, y: Array, s: Array, loss: Loss, unit: Penalty, alphas: Array, tol: Array, cfg: _PathCfg,
    n_devices: int, xtx: Array | None, rho: Array | None, fit_intercept: bool,
) -> tuple[PathResult, Array]:
    """:func:`_paths` shaped into a :class:`PathResult` in the same program, and the status of every lane."""
    out = _paths(X, y, s, loss, unit, alphas, tol, cfg, n_devices, xtx)
    return _path_result(out, alphas, rho, loss, fit_intercept), out.status


@compiled(static_argnames=("fit_intercept",))
def _join_program(
    parts: tuple[_PathOut, ...], alphas: Array, rho: Array | None, loss: Loss, fit_intercept: bool
) -> PathResult:
    """The paths fit one per call (:func:`threaded_paths`) as one :class:`PathResult`."""
    return _path_result(join_paths(parts), alphas, rho, loss, fit_intercept)


def _fallback(cfg: _PathCfg, fallback: bool) -> _PathCfg:
    return cfg._replace(solver=cfg.solver._replace(fallback=fallback))


def _host_gram(X: Any, dtype: Any) -> Array | None:
    """``X.T @ X`` by NumPy for a NumPy ``X`` with many more samples than features, on a CPU.

    NumPy computes ``X.T @ X`` as a symmetric product (BLAS ``syrk``, half the flops of a general
    one); XLA:CPU's product of the same took 13.3 ms against NumPy's 9.9 ms on the tall benchmark
    (20000 x 200), the largest cost of its path, and no less for 2000 x 2000 (76 against 74 ms).
    ``None`` elsewhere: the compiled program forms the Gram matrix itself.
    """
    if jax.default_backend() != "cpu" or not isinstance(X, np.ndarray) or X.ndim != 2:
        return None
    if X.shape[0] < 10 * X.shape[1]:
        return None
    Xh = np.asarray(X, dtype)
    return V.to_device(Xh.T @ Xh)


def check_shard(shard: str) -> None:
    if shard not in ("paths", "rows"):
        raise ValueError(f"shard must be 'paths' or 'rows', got {shard!r}")


def _auto_block_size(gram: bool) -> int:
    """Alphas per block for ``block_size="auto"``: on a CPU 1, or 10 on the Gram matrix; 20 elsewhere.

    ``gram``: the path is solved on the weighted Gram matrix (:func:`jaxreg.solvers.uses_gram`).
    On a CPU a product of the design with ``B`` columns costs several times one column, while the
    lanes of a block share one working set and run until the slowest converges: one alpha at a
    time, each warm-started from the last, does the least work.  One read of the Gram matrix serves
    every lane of a block, so there blocks of 10 win.  On accelerators, where an iteration of 20
    lanes costs little more than one of a single lane, blocks of 20 took an H100 0.059 s on wide
    against 0.071 s for 10, 0.040 s against 0.059 s on square, 0.181 s against 0.186 s for 5-fold CV
    and 0.062 s against 0.060 s on L1-logistic.  Measured in ``benchmarks/README.md``, in blocks;
    20 lanes on the design are now recycled (:func:`_recycles`).  On an H200, 30 recycled lanes took
    the wide path 0.032 s against 0.033 s but the 5-fold CV 0.100 s against 0.065 s.
    """
    if jax.default_backend() != "cpu":
        return 20
    return 10 if gram else 1


def _path_config(
    n_alphas: int, block_size: int | str | None, warm_start: bool, mode: str, max_iter: int, check_every: int,
    capacities: tuple[int, ...] = (), gram: bool = False, mixed: bool = False,
) -> _PathCfg:
    if isinstance(block_size, str) and block_size == "auto":
        block_size = _auto_block_size(gram)
    elif block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive int, 'auto' or None, got {block_size!r}")
    blk = n_alphas if block_size is None else min(int(block_size), n_alphas)
    batch = jax.default_backend() != "cpu"
    solver = S._Config(mode, int(max_iter), int(check_every), capacities, mixed=mixed, fused=S.FUSED)
    return _PathCfg(solver, blk, bool(warm_start), batch)


def _path_result(
    out: _PathOut, grid: Array, rho: Array | None, loss: Loss, fit_intercept: bool, lead: tuple[int, ...] = ()
) -> PathResult:
    """Shape lanes ``lead + grid.shape`` into a :class:`PathResult` (dropping a trivial l1 axis)."""
    return _shape_path(out, grid, rho, loss.n_outputs, bool(fit_intercept), tuple(lead))


def _shape_path(
    out: _PathOut, grid: Array, rho: Array | None, K: int, fit_intercept: bool, lead: tuple[int, ...]
) -> PathResult:
    """:func:`_path_result`, traced into the program that computes ``out`` (outside a program, each
    reshape would compile one)."""
    res = S._result(out, lead + grid.shape, K, fit_intercept)
    if rho is None:
        res = jax.tree_util.tree_map(lambda a: a.reshape(lead + a.shape[len(lead) + 1 :]), res)
        grid = grid[0]
    return PathResult(
        alphas=grid,
        l1_ratios=rho,
        coef=res.coef,
        intercept=res.intercept,
        n_iter=res.n_iter,
        gap=res.gap,
        converged=res.converged,
    )
