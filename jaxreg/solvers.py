"""Batched FISTA with adaptive restart and backtracking, stopping on a duality gap.

The objective (scikit-learn's convention, see ``DESIGN.md``) is::

    P(w, b) = sum_i s_i f(y_i, x_i @ w + b) / sum(s) + g(w)

:func:`solve` fits one penalty, or a whole batch of them when the penalty's leaves carry a leading
batch axis (``jr.L1(alpha=jnp.array([...]))``).  The batch is written in matrix form: the coefficients
of all lanes form one ``(n_features, n_lanes)`` matrix, so one iteration costs two matrix products
``X @ W`` and ``X.T @ G``, and a single ``lax.while_loop`` runs while any lane is unconverged; finished
lanes are frozen.  Convergence is checked every ``check_every`` iterations.

Stopping rule.  With ``u = -f'(y, z)`` and ``v = Xc.T @ (s * u) / sum(s)``, the dual point ``c * u``
(``c`` in ``(0, 1]`` scales ``v`` into the penalty's dual ball) gives the Fenchel dual value
``D = -sum_i s_i f*(y_i, -c u_i) / sum(s) - g*(c v)`` and the gap ``P - D >= 0``.  The constraints that
the intercept and unpenalized features put on the dual point (``v_j = 0``, ``mean_s(u) = 0``) hold
only at the optimum.  The gap is therefore computed for the problem in which each free coordinate is
confined to a box ``|w_j| <= R_j`` with ``R_j = max(2 |w_j|, sqrt(scale) / ||x_j||_s)`` (and
``R_b = max(2 |b_c|, sqrt(scale))`` for the intercept), whose conjugate adds ``c R_j |v_j|``: near the
solution the box is inactive, so this is a true duality gap of a problem with the same solution, and
it vanishes only when the free coordinates are optimal too.  With an intercept, ``Xc`` is ``X`` with
its columns centered with the weights ``s`` and ``b_c = b + mean_s(X) @ w`` (for multinomial, less
its mean over the classes, to which the loss is blind): the gap of the same problem in coordinates
whose intercept does not grow with the column means (see :class:`_Design`).  A lane stops
when its gap is at most ``tol * scale`` with ``scale = 2 * mean_s f(y, b0)``, the deviance of the
intercept-only model; for squared loss that is ``||y - mean(y)||**2 / n``, scikit-learn's meaning of
``tol``.  For squared loss the intercept is eliminated in closed form (``b = mean_s(y - X @ w)``),
exactly as centering does.  A custom loss without a conjugate stops on the norm of the
proximal-gradient mapping instead.
"""

from __future__ import annotations

import enum
import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _fused
from . import _validation as V
from ._precision import compiled
from .implicit import detach, differentiable
from .losses import Loss, SquaredLoss, with_target
from .penalties import L1, Penalty, _ElasticNetFamily, check_penalty

__all__ = ["solve", "Result", "Status"]

Array = jax.Array


class Status(enum.IntEnum):
    """Why a lane stopped."""

    CONVERGED = 0
    MAX_ITER = 1
    NONFINITE = 2
    STALLED = 3  # the iterate stopped changing above tol: the dtype cannot resolve the tolerance


#: checks in a row at which a lane's iterate is unchanged before it counts as stalled
_STALL_CHECKS = 3


class Result(NamedTuple):
    """Solution of :func:`solve`.

    Attributes:
      coef: ``batch_shape + (n_features,)``, or ``batch_shape + (n_features, n_classes)`` (multinomial).
      intercept: ``batch_shape``, or ``batch_shape + (n_classes,)``.
      n_iter: iterations run per lane.
      gap: duality gap reached (gradient-mapping norm for a loss without conjugate).
      converged: ``gap <= tol * scale`` reached before ``max_iter``, with finite iterates.
      status: :class:`Status` code per lane: 0 converged, 1 ``max_iter`` reached, 2 non-finite
        iterates, 3 stalled (above the tolerance, the iterate stopped changing bit for bit for
        ``3 * check_every`` iterations: rounding in the dtype, float32 most often, limits the gap).
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
    # as rows times X: XLA:CPU runs X.T @ g with one column 3x to 12x slower than g.T @ X, and not
    # faster with more columns (benchmarks/README.md)
    return (G.reshape(n, -1).T @ X).T.reshape((X.shape[1],) + G.shape[1:])


#: FISTA's steps by the Pallas kernels of :mod:`jaxreg._fused` (two a step instead of about ten XLA
#: kernels on a GPU) wherever they apply (:func:`_fusable`), in the solvers configured after this
#: is set.  Off until a GPU has timed them: on a CPU they run in Pallas' interpreter, for tests;
#: on TPUs (no Triton) the steps stay XLA's.
FUSED = False

#: squared loss on a working set of at most this many times ``n_samples`` features is solved on the
#: set's Gram matrix.  Forming it costs ``n k**2`` per outer iteration, which the ``k**2`` instead
#: of ``2 n k`` per FISTA step repays only for small ``k``: at ``2 n`` (the earlier bound) the
#: wide benchmark (n = 500) solved its 256 and 512 buckets on Gram matrices and took 7% longer on
#: its path, 12% on its CV (``benchmarks/buckets.py``, benchmarks/README.md).
_GRAM_RATIO = 0.25


class _Config(NamedTuple):
    """Static configuration of one compiled solver."""

    intercept: str  # "none" | "closed" | "grad"
    max_iter: int
    check_every: int
    capacities: tuple[int, ...] = ()  # working-set sizes; () = all features
    # Unroll the check_every steps between two checks.  On an H100 it cut the wide path's steady
    # time by 10% and doubled its compile time (8.0 -> 16.6 s); with two steps a turn of the loop
    # (the default on accelerators) an H200 ran the wide path in 0.035 s against 0.033 s, with a
    # first call of 20 s against 7 s: off (benchmarks/README.md).
    unroll: bool = False
    # Working-set solves in float32 for float64 data; see mixed_precision
    mixed: bool = False
    # squared loss: working sets of at most gram_ratio * n_samples features use their Gram matrix
    gram_ratio: float = _GRAM_RATIO
    # The program holds the solve on all features in the data's dtype that takes over what float32
    # cannot finish (under mixed) or what buckets ending below all features cannot hold.  Without
    # it, such a lane ends with status _HANDOVER and the caller solves again with it (with_fallback):
    # one FISTA fewer to compile, 0.2 to 0.35 s of a first call.
    fallback: bool = True
    # FISTA's steps by jaxreg._fused's kernels where they apply (see FUSED)
    fused: bool = False


#: smallest ``tol`` for which float64 data is solved on its working sets in float32 (see
#: :func:`mixed_precision`): float32 resolves the objective to about 1e-7 of its scale, and the
#: working-set solves stop at 0.5 tol, so this leaves a margin of 50x
_MIXED_MIN_TOL = 1e-5
#: smallest design (n_samples * n_features) solved in mixed precision
_MIXED_MIN_SIZE = 1 << 14


def mixed_precision(dtype: Any, tol: Any, shape: tuple[int, int]) -> bool:
    """Whether float64 data is solved on its working sets in float32, the full problem's checks in float64.

    On a CPU float32 products are twice as fast (and vectorize twice as wide); every outer
    iteration still computes the duality gap of the whole problem in float64, so the result meets
    ``tol`` in float64 or is not reported as converged.  A working-set solve that float32 cannot
    finish (its iterate stalls, overflows or runs past ``_MIXED_MAX_INNER`` iterations) hands the
    lane back to float64 on all features.  Off on accelerators, whose float64 runs close to float32
    speed; for tolerances below ``_MIXED_MIN_TOL``; for a ``tol`` traced under ``jit``; and for
    designs of fewer than ``_MIXED_MIN_SIZE`` entries, whose iterations cost their overhead, not
    their products.
    """
    t = V.concrete(tol)
    return (
        np.dtype(dtype) == np.float64
        and jax.default_backend() == "cpu"
        and shape[0] * shape[1] >= _MIXED_MIN_SIZE
        and t is not None
        and t.size == 1
        and float(t) >= _MIXED_MIN_TOL
    )


def low_design(X: Array, s: Array, mode: str) -> tuple[Array, Array]:
    """``X`` in float32 for :func:`mixed_precision`, centered with the weights ``s[:, 0]`` where an
    intercept absorbs the shift, and the centers (float64): large column means cost no precision."""
    center = s[:, 0] @ X if mode != "none" else jnp.zeros(X.shape[1], X.dtype)
    return (X - center).astype(jnp.float32), center


def _as_dtype(tree: Any, dtype: Any) -> Any:
    """Cast the floating leaves of a pytree (arrays, penalties, losses) to ``dtype``."""

    def cast(a: Any) -> Any:
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree_util.tree_map(cast, tree)


def _intercept_mode(loss: Loss, fit_intercept: bool) -> str:
    if not fit_intercept:
        return "none"
    return "closed" if loss.closed_form_intercept else "grad"


#: status of the lanes of a solve that need the solve on all features in the data's dtype, in a
#: program compiled without it (``_Config.fallback``); never returned to a user: :func:`with_fallback`
#: solves again
_HANDOVER = 4


def with_fallback(call: Any, cfg: _Config, inputs: Any, status: Any) -> Any:
    """``call(fallback)`` for a solver configured by ``cfg``: first without the fallback.

    With concrete ``inputs``, the program is first compiled without the solve on all features in the
    data's dtype that takes over what float32 cannot finish (under mixed precision) or what the
    buckets cannot hold (where they end below all features, :func:`capacities`); if some lane needed
    it (``status(out)`` holds :data:`_HANDOVER`), the call runs again with it.  Traced inputs (under a
    user's ``jit``) keep the fallback in the program.  Reading the status waits for the result.
    """
    leaves = jax.tree_util.tree_leaves(inputs)
    if any(isinstance(a, jax.core.Tracer) for a in leaves):
        return call(True)
    out = call(False)
    if np.any(np.asarray(status(out)) == _HANDOVER):
        out = call(True)
    return out


def _rule(L: Array, t: Array, L0: Array, active: Array, finite: Array, excess: Array, quad: Array,
          slack: Any, restart_dot: Array) -> tuple[Array, Array, Array, Array]:
    """A FISTA step's decision per lane, on arrays of one shape (XLA's lanes, or a kernel's rows).

    The sufficient-decrease test of the candidate (``excess`` of the smooth part over its
    linearization, within ``L quad / 2`` and the rounding ``slack``), the step size, FISTA's
    momentum and its restart: whether each lane accepts the candidate, its extrapolation ``beta``,
    and the lane's next ``t`` and ``L``.  Accepted steps shrink ``L`` by :data:`_L_DECAY` down to
    ``L0 / _L_FLOOR``, rejected ones double it.
    """
    ok = finite & (excess <= 0.5 * L * quad + slack)
    accept = active & ok
    # L shrinks down to L0 / _L_FLOOR, after steps whose quadratic bound is above the rounding of
    # F: where F is resolved no better than that, longer steps would only move the iterate by noise
    # (squared loss tests its exact remainder, with no rounding of F: slack 0)
    shrink = (L * quad > slack) & (_L_FLOOR * L > L0)
    # the next step is 1 / (decay L): t_next**2 - t_next = t**2 (step / next step)
    t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * jnp.where(shrink, _L_DECAY, 1.0) * t**2))
    beta = (t - 1.0) / t_next
    # Gradient-based adaptive restart (O'Donoghue & Candes, 2015).
    restart = restart_dot > 0
    beta = jnp.where(restart, 0.0, beta)
    t_next = jnp.where(restart, 1.0, t_next)
    L_next = jnp.where(accept, jnp.where(shrink, _L_DECAY, 1.0) * L, jnp.where(active, 2.0 * L, L))
    return accept, beta, jnp.where(accept, t_next, t), L_next


def _start(shape: tuple[int, ...], dtype: Any) -> Array:
    """A fixed pseudo-random start for power iterations, uniform in ``[-1, 1)``.

    The integer hash of each entry's index (MurmurHash3's finalizer): one elementwise kernel, where
    ``jax.random`` puts a counter-based generator into every compiled solver.
    """
    x = jnp.arange(int(np.prod(shape)), dtype=jnp.uint32).reshape(shape) * jnp.uint32(0x9E3779B9)
    x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
    x = x ^ (x >> 16)
    return (x >> 8).astype(dtype) * (2.0**-23) - 1.0


#: Power iterations for the step size of a working-set solve.  A few give a lower estimate of the
#: largest eigenvalue, so the first steps are longer; backtracking doubles L where they fail.  With 3
#: instead of 10, the benchmark paths took 14% fewer FISTA iterations on wide (2340 -> 2010), 24% on
#: tall, 8% on square and 5% on L1-logistic, besides the products the 7 iterations saved.  A solve
#: without working sets (dense penalties) keeps 10: it estimates once, and was not measured.
_N_POWER = 3
_N_POWER_DENSE = 10

#: After an accepted step a lane's ``L`` shrinks by this factor, so the step grows back wherever the
#: loss is flatter along the iterates than its largest curvature (backtracking doubles ``L`` where a
#: step fails), with the momentum ``t`` updated for the changed step as in FISTA with backtracking
#: in both directions (Scheinberg, Goldfarb and Bai, 2014; Calatroni and Chambolle, 2019).  On the
#: benchmark paths the working-set solves took 20% to 37% fewer iterations (benchmarks/README.md).
_L_DECAY = 0.95
_L_FLOOR = 8.0


def lipschitz(X: Array, s: Array, mode: str, n_power: int = _N_POWER_DENSE, center: Array | None = None) -> Array:
    """Largest eigenvalue of the weighted Gram matrix of the design, per weight column.

    ``s`` has shape ``(n_samples, S)``; the design is ``X`` centered with weights ``s`` when the
    intercept is eliminated in closed form, ``[X, 1]`` when it is a free variable, else ``X``;
    ``center (n_features, S)`` replaces ``X`` by ``X - center.T`` (see :class:`_Design`); in closed
    form it must be the weighted column means.
    Power iteration from a fixed pseudo-random start: an estimate from below, which the backtracking
    of the solver corrects (see :data:`_N_POWER`).
    """
    p = X.shape[1]
    extra = 1 if mode == "grad" else 0
    v0 = _start((p + extra, s.shape[1]), X.dtype)

    # In closed form with the centers given (the weighted column means, the weights summing to one),
    # z = X v - center.v has weighted mean zero, so r = s z sums to zero and X.T r is the centered
    # product: three reductions an iteration instead of seven (compiled for an H100, 16 kernels fewer
    # a working-set solve)
    recenter = mode == "closed" and center is None

    def apply(v: Array) -> Array:
        z = X @ v[:p]
        if center is not None:
            z = z - jnp.sum(center * v[:p], axis=0)
        if mode == "grad":
            z = z + v[p]
        if recenter:
            z = z - jnp.sum(s * z, axis=0)
        r = s * z
        if recenter:
            r = r - s * jnp.sum(r, axis=0)
        out = rmatmul(X, r)
        if center is not None and mode != "closed":
            out = out - center * jnp.sum(r, axis=0)
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
    img: Array  # linear image of (W, b) the model carries: Z = X W + b, or A = G W
    F: Array  # (B,) smooth part at x_k (of a quadratic model: at the last check; its steps need none)
    Wy: Array  # extrapolated point y_k
    by: Array
    imgy: Array
    t: Array  # (B,) momentum
    L: Array  # (B,) step = 1 / L
    n_iter: Array  # (B,) int32
    done: Array  # (B,) bool
    crit: Array  # (B,) gap (or gradient-mapping norm)
    status: Array  # (B,) int32
    W_check: Array  # (p, B, K) iterate at the last check
    b_check: Array
    flat: Array  # (B,) int32 checks in a row at which the iterate had not changed at all
    overflow: Array  # (B,) bool: a step since the last check was rejected for non-finite values


class Known(NamedTuple):
    """The products of a check at ``(W, b)`` that do not depend on the penalty.

    The image ``Z = X W + b`` (``G W`` on the Gram matrix), the intercept the check settled on, and
    ``v = X.T (s u)``: two passes over ``X``.  Down a path, the next alpha starts where the last one
    stopped, so its first check takes them over instead of computing them again.
    """

    Z: Array
    b: Array
    v: Array


class Solution(NamedTuple):
    """Solver output per lane: ``W (p, B, K)``, ``b (B, K)``, ``n_iter``, ``crit``, ``status (B,)``.

    ``known`` is :class:`Known` at ``(W, b)``: what the last check computed there.
    """

    W: Array
    b: Array
    n_iter: Array
    crit: Array
    status: Array
    known: Known | None = None


def _lane_vmap(fn: Any) -> Any:
    """Map a per-lane penalty method over lanes: penalty leaves on axis 0, arrays on axis 1."""
    return jax.vmap(fn, in_axes=(0, 1), out_axes=0)


def _dot(a: Array, b: Array) -> Array:
    """Per-lane inner product of ``(p, B, K)`` arrays -> ``(B,)``."""
    return jnp.sum(a * b, axis=(0, 2))


class _Design:
    """Smooth part ``sum_i s_i f(y_i, z_i)`` with ``z = X W + b``; carries ``Z`` as its image.

    With ``center (p, B)`` the design is ``X - 1 center.T`` per lane, without forming it: products
    subtract ``center.W`` and ``center * sum(G)``.  Centering the columns with the sample weights
    (the intercept becomes ``b + center.w``) decouples the intercept from the coefficients: with
    column means far from zero, a fitted intercept otherwise takes thousands of iterations.  The
    duality gap is that of the centered problem, the same problem in other coordinates: its
    ``X.T (s u)`` loses no precision to ``center * sum_i s_i u_i``, and the box of a free intercept
    (see :func:`gap`) has the radius of ``b``, not of ``b - center.w``, which grows with the column
    means (columns offset by 1000 held an L1-logistic path at 5000 times ``tol``).  The checks of the
    whole problem use the same centers (:func:`_full_model`), so a working-set solve stops where they
    will find it converged.  :meth:`intercept` gives the intercept of ``X``.
    """

    def __init__(self, X: Array, y: Array, s: Array, loss: Loss, mode: str, center: Array | None = None):
        self.X, self.y, self.s, self.loss, self.mode, self.center = X, y, s, loss, mode, center
        # Squared loss with its intercept in closed form (or none): F is a quadratic of W, so a step's
        # excess over the linear model is exactly sum_i s_i (z+_i - z_i)**2 / 2 (:meth:`step_excess`)
        self.quadratic = isinstance(loss, SquaredLoss) and mode != "grad"

    def intercept(self, W: Array, b: Array) -> Array:
        """The intercept of the uncentered design ``X`` for this model's ``(W, b)``."""
        return b if self.center is None else b - jnp.einsum("kb,kbo->bo", self.center, W)

    def model_intercept(self, W: Array, b: Array) -> Array:
        """This model's intercept for the intercept ``b`` of ``X`` (the inverse of :meth:`intercept`)."""
        return b if self.center is None else b + jnp.einsum("kb,kbo->bo", self.center, W)

    def _rmatmul(self, G: Array, G_sum: Array | None = None) -> Array:
        out = rmatmul(self.X, G)
        if self.center is None:
            return out
        return out - self.center[..., None] * (jnp.sum(G, axis=0) if G_sum is None else G_sum)[None]

    def forward(self, W: Array, b: Array, cw: Array | None = None) -> tuple[Array, Array]:
        """The image and intercept at ``(W, b)``; ``cw``: ``center.W`` when the caller has it."""
        XW = matmul(self.X, W)
        if self.center is not None:
            XW = XW - (jnp.einsum("kb,kbo->bo", self.center, W) if cw is None else cw)[None]
        if self.mode == "closed":
            b = jnp.sum(self.s[..., None] * (self.y[:, None, None] - XW), axis=0)
        elif self.mode == "none":
            b = jnp.zeros_like(b)
        return XW + b[None], b

    def value(self, Z: Array, W: Array) -> Array:
        return jnp.sum(self.s * self.loss._value(self.y, Z), axis=0)

    def grad(self, Zy: Array, Wy: Array) -> tuple[Array, Array, Array, Array, Array | None]:
        """``F``, gradients in ``W`` and ``b``, the rounding error of ``F`` at ``Zy`` but for the centering's,
        and ``sum_i |s_i f'_i|`` for that (see :meth:`center_slack`; ``None`` without centers).

        A :attr:`quadratic` model's steps need none of ``F`` and its rounding (:meth:`step_excess`):
        it gives the gradient in ``W`` alone (``None``, ``gW``, zeros, 0, ``None``).
        """
        if self.quadratic:
            G = self.s[..., None] * (Zy - self.y[:, None, None])  # f'(z) = z - y
            if self.mode == "closed" and jax.default_backend() != "cpu":
                # The intercept in closed form: each lane's weighted residuals at an image of forward,
                # or an extrapolation of two, sum to zero but for the image's rounding, ~eps |y - y_off|
                # (run centers the targets), so the centering's c sum(G) is left out: compiled for an
                # H100, one kernel a step fewer (the whole problem's checks keep it)
                gW = rmatmul(self.X, G)
            else:
                gW = self._rmatmul(G)
            return None, gW, jnp.zeros(Zy.shape[1:], Zy.dtype), 0.0, None
        Fy, pullback = jax.vjp(lambda Z: self.value(Z, Wy), Zy)
        (Gz,) = pullback(jnp.ones_like(Fy))
        eps = jnp.finfo(Zy.dtype).eps
        if Zy.shape[1] > 1 and Zy.shape[2] == 1:
            # several lanes: the sums over the samples in one reduction (one kernel on a GPU, not four)
            rows = [(self.s * self.loss._value(self.y, Zy))[..., None], jnp.abs(Gz * Zy), Gz, jnp.abs(Gz)]
            sums = jnp.sum(jnp.stack(rows[: 4 if self.center is not None else 3]), axis=1)  # (rows, B, 1)
            Fy, abs_gz_z, G_sum = sums[0, :, 0], sums[1, :, 0], sums[2]
            abs_gz = sums[3] if self.center is not None else None
        else:
            abs_gz_z, G_sum = jnp.sum(jnp.abs(Gz * Zy), axis=(0, 2)), jnp.sum(Gz, axis=0)
            abs_gz = jnp.sum(jnp.abs(Gz), axis=0) if self.center is not None else None
        # Rounding in z = X w + b is ~eps |z|, so F carries an error ~eps * sum_i s_i |f'(z_i)| |z_i|.
        slack = 32 * eps * (abs_gz_z + jnp.abs(Fy))
        return Fy, self._rmatmul(Gz, G_sum), G_sum, slack, abs_gz

    def step_excess(self, Zn: Array, Zy: Array) -> Array:
        """``F(x+) - F(y) - <grad F(y), x+ - y>`` of a :attr:`quadratic` model from the images ``Zn`` of
        ``x+`` and ``Zy`` of ``y``: ``sum_i s_i (Zn_i - Zy_i)**2 / 2``, exact, and free of the
        cancellation of ``F(x+) - F(y)``, which in float32 held steps short.  With the accelerators'
        loops (``benchmarks/profile.py --accelerator-loops``) the float32 wide path took 530 batched
        iterations instead of 650 (7440 summed instead of 8960); float64's stayed 440."""
        d = Zn - Zy
        return 0.5 * jnp.sum(self.s[..., None] * d * d, axis=(0, 2))

    def forward_excess(
        self, W: Array, b: Array, cw: Array, shift: Array, Zy: Array
    ) -> tuple[Array, Array, Array]:
        """:meth:`forward` and :meth:`step_excess` from ``Zy``, several lanes of one output of a
        :attr:`quadratic` model, in one reduction over the samples.

        With the intercept in closed form (weights summing to one), ``b = shift + d`` with
        ``d = sum_i s_i r_i``, ``r = y - X W - shift``, and ``z+ - Zy = a + d`` with
        ``a = X W - (Zy - shift)``.  Since ``sum_i s_i a_i = -d + e`` with ``e = sum_i s_i (y_i - Zy_i)``,
        which the closed-form intercept of ``Zy`` makes zero but for rounding, the excess is
        ``(sum_i s_i a_i**2 - d**2) / 2 + d e``, of which this takes the first term.  With ``shift``
        the last accepted intercept, ``d`` is rounding too: on centered columns the closed-form
        intercept is the targets' weighted mean whatever ``W``.

        On accelerators only: compiled for an H100, wide's two steps a turn launch 25, 25, 22 and 25
        kernels on 256, 512, 1024 and all features with this, 27, 27, 24 and 29 with two reductions
        after each other.  A CPU fuses each reduction with its product; there one reduction for the
        intercept and ``F`` (this method's predecessor) took a 5-fold CV of six lanes 4% longer.
        """
        XW = matmul(self.X, W) - cw[None]
        if self.mode == "none":
            return XW, jnp.zeros_like(b), self.step_excess(XW, Zy)
        a = XW - (Zy - shift[None])
        sr = self.s[..., None] * (self.y[:, None, None] - XW - shift[None])
        sums = jnp.sum(jnp.stack([sr, self.s[..., None] * a * a]), axis=1)[..., 0]  # (2, B)
        d = sums[0]
        b = shift + d[:, None]
        return XW + b[None], b, 0.5 * (sums[1] - d * d)

    def center_slack(self, abs_gz: Array, acw: Array | None, Wy: Array) -> Array:
        """The rounding of ``F`` from the centering: ``z = X w - c.w`` cancels where the column means
        are large, to ~eps |c|.|w|; ``acw``: ``|c|.|Wy|`` when the caller has it."""
        if acw is None:
            acw = jnp.einsum("kb,kbo->bo", jnp.abs(self.center), jnp.abs(Wy))  # (B, K)
        return 32 * jnp.finfo(Wy.dtype).eps * jnp.sum(abs_gz * acw, axis=-1)

    def excess(self, Fn: Array, Fy: Array, inner: Array, gb: Array, db: Array) -> Array:
        """``F(x+) - F(y) - <grad, x+ - y>``, to be at most ``L / 2 ||x+ - y||**2``."""
        return Fn - Fy - inner - jnp.sum(gb * db, axis=-1)

    def dual(self, W: Array, b: Array, Z: Array, F: Array, v: Array | None = None) -> tuple[Array, Any, Array]:
        """``v = X.T (s u)`` with ``u = -f'(z)``, ``c -> sum_i s_i f*(-c u_i)``, and ``sum_i s_i u_i``.

        ``v``: the product when it is known already (:class:`Known`).
        """
        u = -jax.grad(lambda Z_: jnp.sum(self.loss._value(self.y, Z_)))(Z)
        su = self.s[..., None] * u
        s, y, loss = self.s, self.y, self.loss

        if self.mode == "closed":
            # Squared loss with the intercept eliminated: sum_i s_i u_i = 0, so the conjugate's
            # linear term may use the centered targets, which keeps a large mean of y (whose
            # rounding in z = X w + b leaves sum_i s_i u_i ~ eps |mean y|) out of the gap.
            yc = y[:, None] - jnp.sum(s * y[:, None], axis=0)  # (n, B)

            def fconj(c: Array) -> Array:
                v = -c[None, :] * u[..., 0]
                return jnp.sum(jnp.where(s > 0, s * (v * yc + 0.5 * v**2), 0.0), axis=0)

        else:

            def fconj(c: Array) -> Array:
                val = loss._conjugate(y, -c[None, :, None] * u)
                return jnp.sum(jnp.where(s > 0, s * val, 0.0), axis=0)

        return (self._rmatmul(su) if v is None else v), fconj, jnp.sum(su, axis=0)

    def rounding(self, W: Array, img: Array) -> float:
        """What :func:`gap` adds for rounding: nothing (the residuals are formed directly)."""
        return 0.0


class _Gram:
    """Squared loss through the weighted Gram matrix: ``F = w.G w / 2 - q.w + yy / 2``; image ``A = G W``.

    ``G (P, k, k)``, ``q (k, B)``, ``yy (B,)`` with the ``B`` lanes in ``P`` consecutive groups that
    share a Gram matrix. Centered with the sample weights when the intercept is in closed form.
    """

    #: steps take their excess from the images, exactly (see :meth:`_Design.step_excess`): no F
    quadratic = True

    def __init__(self, G: Array, q: Array, yy: Array):
        self.G, self.q, self.yy = G, q, yy

    def intercept(self, W: Array, b: Array) -> Array:
        return b

    def model_intercept(self, W: Array, b: Array) -> Array:
        return b

    def forward(self, W: Array, b: Array) -> tuple[Array, Array]:
        P, k, _ = self.G.shape
        B = W.shape[1]
        Wg = W[..., 0].reshape(k, P, B // P)
        # G is symmetric: contracting its first axis (rows of W times G) lets XLA:CPU use it in place;
        # contracting the last one made it transpose the k x k matrix at every iteration
        A = jnp.einsum("pji,jpb->ipb", self.G, Wg).reshape(k, B)
        return A[..., None], b

    def value(self, A: Array, W: Array) -> Array:
        return 0.5 * _dot(W, A) - jnp.sum(self.q * W[..., 0], axis=0) + 0.5 * self.yy

    def grad(self, Ay: Array, Wy: Array) -> tuple[None, Array, Array, float, None]:
        """The gradient in ``W``, as :meth:`_Design.grad` gives it for a quadratic model.  A step's
        excess is ``<dW, G dW> / 2 = <dW, An - Ay> / 2`` (in :func:`fista`'s step): exact, with no
        rounding of ``F`` to allow for.  With that allowance (``32 eps (|F| + yy)``) in the test
        and in the rule that shrinks ``L``, the float32 square path took 470 batched iterations with
        the accelerators' loops against float64's 370; without it 370 too."""
        return None, Ay - self.q[..., None], jnp.zeros((Wy.shape[1], 1), Ay.dtype), 0.0, None

    def dual(self, W: Array, b: Array, A: Array, F: Array, v: Array | None = None) -> tuple[Array, Any, Array]:
        # residual u: sum_i s_i u_i y_i = yy - q.w and sum_i s_i u_i**2 = 2 F
        uy = self.yy - jnp.sum(self.q * W[..., 0], axis=0)

        def fconj(c: Array) -> Array:
            return -c * uy + c**2 * F

        return (self.q[..., None] - A if v is None else v), fconj, jnp.zeros_like(b)

    def rounding(self, W: Array, A: Array) -> Array:
        """A bound on the rounding of a gap from ``F = w.G w / 2 - q.w + yy / 2``, which :func:`gap` adds.

        The three terms are each about ``yy / 2`` where the fit is good, and cancel to the residual's
        size.  In float32 the solver's gap fell short of NumPy's float64 gap of its solution (on the
        same float32 data) by up to 2.4 ``eps`` times the terms' magnitudes on the square benchmark
        and on 1000 x 400 designs: 0.7% of ``tol=1e-4``, 17% of ``tol=2e-6``; on an H100 a float32
        square path that the solver had certified missed ``tol`` by 0.4%.  The bound is ``4 eps``
        times those magnitudes: about 1% of ``tol=1e-4`` in float32, 1e-11 of it in float64.  Below
        about ``tol=5e-6`` float32 paths on the Gram matrix may then end unconverged, as they are.
        """
        qw = jnp.sum(self.q * W[..., 0], axis=0)
        return 4 * jnp.finfo(A.dtype).eps * (jnp.abs(_dot(W, A)) + jnp.abs(qw) + jnp.abs(self.yy))


def gap(
    model: Any, penalty: Penalty, W: Array, b: Array, img: Array, F: Array, radius: tuple[Array, Array],
    mode: str, has_dual: bool = True, L: Array | None = None, v: Array | None = None,
) -> tuple[Array, Array]:
    """Duality gap per lane (see the module docstring) and ``v = -grad`` in ``W`` (given: not recomputed).

    The gap includes the model's bound on its own rounding (:meth:`_Gram.rounding`): a lane is
    certified only where the gap cannot exceed ``tol`` for rounding either.
    """
    v, fconj, u_sum = model.dual(W, b, img, F, v)
    if not has_dual:
        step = 1.0 / L
        Wn = jax.vmap(lambda pen, w, st: pen.prox(w, st), in_axes=(0, 1, 0), out_axes=1)(
            penalty, W + step[None, :, None] * v, step
        )
        gm = jnp.max(jnp.abs(W - Wn), axis=(0, 2)) * L
        if mode == "grad":
            gm = jnp.maximum(gm, jnp.max(jnp.abs(u_sum), axis=-1))
        return gm, v
    c, conj_g = _lane_vmap(lambda pen, v_: pen.dual(v_))(penalty, v)
    P = F + _lane_vmap(lambda pen, w: pen.value(w))(penalty, W)
    D = -fconj(c) - conj_g
    free = jnp.moveaxis(_lane_vmap(lambda pen, w: pen.unpenalized(w))(penalty, W), 0, 1)  # (p, B, K)
    R = jnp.maximum(2.0 * jnp.abs(W), radius[0][..., None])
    # conjugate of the box [-R, R] (of [0, R] under positive=True) at v
    slope = jnp.maximum(v, 0.0) if getattr(penalty, "positive", False) else jnp.abs(v)
    box = jnp.sum(jnp.where(free, R * slope, 0.0), axis=(0, 2))
    if mode == "grad":
        if b.shape[-1] > 1:  # multinomial: blind to a common shift of the intercepts, which the box is not
            b = b - jnp.mean(b, axis=-1, keepdims=True)
        Rb = jnp.maximum(2.0 * jnp.abs(b), radius[1][:, None])  # b: the model's own intercept
        box = box + jnp.sum(Rb * jnp.abs(u_sum), axis=-1)
    return P - D + c * box + model.rounding(W, img), v


def _stackable(model: Any, penalty: Penalty, W0: Array, mode: str) -> bool:
    """Whether :func:`_fista`'s checks can take the gap's terms in stacked reductions (``stacked_gap``):
    squared loss with its intercept in closed form (on a design centered or not), an
    elastic-net-family penalty, several lanes of one output."""
    return (
        isinstance(model, _Design)
        and model.quadratic
        and mode == "closed"
        and isinstance(penalty, _ElasticNetFamily)
        and W0.shape[1] > 1
        and W0.shape[2] == 1
        and W0.dtype in (jnp.float32, jnp.float64)
    )


def _fusable(model: Any, penalty: Penalty, W0: Array, mode: str) -> bool:
    """Whether :mod:`jaxreg._fused` takes :func:`fista`'s steps: a model :func:`_stackable`, features
    that the kernels' tiles divide (the working sets' buckets; all features on accelerators, a
    multiple of 128), on a GPU (or in Pallas' interpreter; not on TPUs)."""
    return _stackable(model, penalty, W0, mode) and _fused.fits(W0.shape[0]) and _fused.available()


def _pad_rows(a: Array, n: int) -> Array:
    """``a`` with zero rows appended along its first axis up to ``n`` rows (as is, if it has them)."""
    extra = n - a.shape[0]
    return jnp.pad(a, [(0, extra)] + [(0, 0)] * (a.ndim - 1)) if extra else a


def _pad_lanes(a: Any, B: int, axis: int) -> Any:
    """``a`` with copies of its first lane appended along ``axis`` up to ``B`` lanes."""
    a = jnp.asarray(a)
    extra = B - a.shape[axis]
    if not a.ndim or extra == 0:
        return a
    return jnp.concatenate([a, jnp.take(a, jnp.zeros(extra, jnp.int32), axis=axis)], axis=axis)


class _FusedPlan(NamedTuple):
    """The operands of :mod:`jaxreg._fused`'s kernels (padded) and of ``_fista``'s ``stacked_gap``
    that stay fixed over a solve."""

    X: Array  # (n, k), with the kernels zero rows appended
    s: Array  # (n, B)
    y: Array  # (n, 1)
    yc: Array  # (n, B) y less its weighted mean
    center: Array  # (k, B)
    l1: Array  # (k, B) the penalty's strengths
    l2: Array
    positive: bool


def _plan(model: _Design, penalty: Penalty, k: int, dtype: Any) -> _FusedPlan:
    """:class:`_FusedPlan` of a model :func:`_stackable` (zero centers on an uncentered design: the
    same steps and gaps)."""
    l1, l2 = jax.vmap(lambda pen: pen._strengths(k, dtype))(penalty)
    # materialized before the loop (XLA would otherwise sink broadcasts of the strengths into it)
    yc = model.y[:, None] - jnp.sum(model.s * model.y[:, None], axis=0)
    center = jnp.zeros((k, model.s.shape[1]), dtype) if model.center is None else model.center
    arrays = jax.lax.optimization_barrier((model.X, model.s, model.y[:, None], yc, center, l1.T, l2.T))
    return _FusedPlan(*arrays, penalty.positive)


def fista(
    model: Any,
    penalty: Penalty,
    W0: Array,
    b0: Array,
    L0: Array,
    tol_abs: Array,
    max_iter: Array,
    radius: tuple[Array, Array],
    cfg: _Config,
    has_dual: bool = True,
    kappa: Array | None = None,
) -> _State:
    """Run batched FISTA from ``(W0, b0)``; see :func:`_fista`.

    With ``cfg.fused`` (:data:`FUSED`) and a model :func:`_fusable`, the steps are
    :mod:`jaxreg._fused`'s kernels, on samples and lanes padded to the kernels' tiles for the
    whole solve: rows of zero weight, and copies of the first lane that are done from the start.
    Otherwise, on accelerators, the checks of a model :func:`_stackable` take ``_fista``'s
    ``stacked_gap``.
    """
    kappa = jnp.ones(W0.shape[1], W0.dtype) if kappa is None else kappa
    k, B = W0.shape[:2]
    if not (cfg.fused and _fusable(model, penalty, W0, cfg.intercept)):
        # on accelerators the checks in stacked reductions where they apply (compiled for an H100,
        # 10 kernels a check fewer on wide's working sets); on a CPU XLA fuses the generic ones
        stacked = jax.default_backend() != "cpu" and _stackable(model, penalty, W0, cfg.intercept)
        plan = _plan(model, penalty, k, W0.dtype) if stacked else None
        return _fista(model, penalty, W0, b0, L0, tol_abs, max_iter, radius, cfg, has_dual, kappa, plan)
    n = model.X.shape[0]
    n_p, B_p = _fused.rows_padded(n), _fused.lanes_padded(B)
    rows = functools.partial(_pad_rows, n=n_p)
    lanes = functools.partial(_pad_lanes, B=B_p)
    center = jnp.zeros((k, B), W0.dtype) if model.center is None else model.center  # the same steps
    model = _Design(rows(model.X), rows(model.y), rows(lanes(model.s, axis=1)), model.loss, model.mode,
                    lanes(center, axis=1))  # fmt: skip
    penalty = jax.tree_util.tree_map(lambda a: lanes(a, axis=0), penalty)
    st = _fista(model, penalty, lanes(W0, axis=1), lanes(b0, axis=0), lanes(L0, axis=0),
                lanes(tol_abs, axis=0), lanes(max_iter, axis=0), (lanes(radius[0], axis=1),
                lanes(radius[1], axis=0)), cfg, has_dual, lanes(kappa, axis=0),
                _plan(model, penalty, k, W0.dtype), B, fused=True)  # fmt: skip
    axes = {"W": 1, "Wy": 1, "W_check": 1, "img": 1, "imgy": 1}
    st = st._replace(**{f: jax.lax.slice_in_dim(getattr(st, f), 0, B, axis=axes.get(f, 0))
                        for f in st._fields})  # fmt: skip
    return st._replace(img=st.img[:n], imgy=st.imgy[:n])


def _fista(
    model: Any,
    penalty: Penalty,
    W0: Array,
    b0: Array,
    L0: Array,
    tol_abs: Array,
    max_iter: Array,
    radius: tuple[Array, Array],
    cfg: _Config,
    has_dual: bool,
    kappa: Array,
    plan: _FusedPlan | None = None,
    n_lanes: int | None = None,
    fused: bool = False,
) -> _State:
    """Run batched FISTA from ``(W0, b0)``; every lane has its own step, restart and stopping test.

    ``kappa (B,)`` scales the metric of a fitted intercept (``mode == "grad"``): the intercept's step
    is ``1 / (kappa L)`` instead of ``1 / L``.  With ``kappa L0`` near the intercept's own curvature,
    a feature on a large scale (which sets ``L``) no longer freezes the intercept.  FISTA in this fixed
    diagonal metric converges as in the Euclidean one; backtracking tests the metric's quadratic bound.

    ``model`` is a :class:`_Design` or :class:`_Gram`. Shapes: ``W0 (p, B, K)``, ``b0 (B, K)``;
    ``L0``, ``tol_abs`` and ``max_iter`` are ``(B,)``; ``penalty`` leaves have leading axis ``B``;
    ``radius = (R0 (p, B), Rb0 (B,))`` are the data-scaled box radii of the free coordinates.
    Steps that fail the sufficient-decrease test are rejected and the lane's ``L`` doubled; accepted
    ones shrink it by :data:`_L_DECAY`.

    ``plan`` (a model :func:`_stackable`): the checks take the gap's terms in stacked reductions;
    with ``fused`` the steps are :mod:`jaxreg._fused`'s kernels, on the plan's padded operands, and
    the lanes from ``n_lanes`` on are padding, done from the start.
    """
    dtype = W0.dtype
    mode = cfg.intercept

    def prox_lanes(V: Array, step: Array) -> Array:
        return jax.vmap(lambda pen, v, st: pen.prox(v, st), in_axes=(0, 1, 0), out_axes=1)(penalty, V, step)

    def stacked_gap(st: _State) -> tuple[Array, Array, Array]:
        """:func:`gap`, ``F`` and the count of coefficients changed since the last check of a
        :func:`_stackable` model (``plan``), in one reduction over the samples and one or two over
        the features (the generic ones take about a dozen kernels on a GPU).  The same terms: with
        ``u = y - z``, ``F = sum s u**2 / 2`` and the conjugate at ``c`` is
        ``-c sum s u yc + c**2 sum s u**2 / 2``."""
        W = st.W[..., 0]
        u = plan.y - st.img[..., 0]
        su = plan.s * u
        S2, Sy, Su = jnp.sum(jnp.stack([su * u, su * plan.yc, su]), axis=1)
        v = rmatmul(plan.X, su) - plan.center * Su
        a = jnp.maximum(v, 0.0) if plan.positive else jnp.abs(v)
        l1, l2 = plan.l1, plan.l2
        l1_only = (l2 == 0) & (l1 > 0)
        ratio = jnp.where(l1_only, a / jnp.where(l1_only, l1, 1.0), 0.0)
        free = (l1 == 0) & (l2 == 0)
        box = jnp.where(free, jnp.maximum(2.0 * jnp.abs(W), radius[0]) * a, 0.0)
        rows = [l1 * jnp.abs(W) + 0.5 * l2 * W * W, box, (W != st.W_check[..., 0]).astype(dtype)]
        g, box, changed = jnp.sum(jnp.stack(rows), axis=1)
        c = 1.0 / jnp.maximum(jnp.max(ratio, axis=0), 1.0)
        conj = 0.0
        if not isinstance(penalty, L1):  # (|c v| - l1)_+**2 / (2 l2) where l2 > 0
            over = jnp.maximum(c * a - l1, 0.0)
            conj = jnp.sum(jnp.where(l2 > 0, over**2 / jnp.where(l2 > 0, 2.0 * l2, 1.0), 0.0), axis=0)
        F = 0.5 * S2
        return F + g + (-c * Sy + 0.5 * c * c * S2) + conj + c * box, F, changed

    def check(st: _State) -> _State:
        if plan is not None:
            crit, F, changed = stacked_gap(st)
            st = st._replace(F=F)
            frozen = (changed == 0) & jnp.all(st.b == st.b_check, axis=-1)
        else:
            if getattr(model, "quadratic", False):  # its steps carry no F
                st = st._replace(F=model.value(st.img, st.W))
            crit, _ = gap(model, penalty, st.W, st.b, st.img, st.F, radius, mode, has_dual, st.L)
            # An iterate that no step changes any more, bit for bit, is a fixed point of the rounded
            # iteration: its gap cannot decrease further.
            # (Steps rejected for overflow also leave it unchanged; those lanes end as NONFINITE.)
            frozen = jnp.all(st.W == st.W_check, axis=(0, 2)) & jnp.all(st.b == st.b_check, axis=-1)
        converged = crit <= tol_abs
        bad = ~jnp.isfinite(crit) | ~jnp.isfinite(st.L) | (st.L > L0 * 1e30)
        out_of_iter = st.n_iter >= max_iter
        flat = jnp.where(frozen & ~st.overflow, st.flat + 1, 0)
        stalled = flat >= _STALL_CHECKS
        status = jnp.where(
            converged & ~bad,
            Status.CONVERGED,
            jnp.where(bad, Status.NONFINITE, jnp.where(stalled, Status.STALLED, Status.MAX_ITER)),
        ).astype(jnp.int32)
        stop = (converged | bad | out_of_iter | stalled) & ~st.done
        return st._replace(
            done=st.done | stop,
            crit=jnp.where(st.done, st.crit, crit),
            status=jnp.where(stop, status, st.status),
            # where a lane was done the iterate is no longer compared: a pick, not a copy of W (on
            # accelerators XLA fuses it with the check's reductions; a copy was a kernel a check)
            W_check=jnp.where(st.done[None, :, None], st.W_check, st.W),
            b_check=jnp.where(st.done[:, None], st.b_check, st.b),
            flat=flat,
            overflow=jnp.zeros_like(st.overflow),
        )

    def step(st: _State, defer: bool = False) -> Any:
        """One step from ``st``; with ``defer``, the state with its arrays not yet picked and the
        pick's operands ``(accept, beta, Wn, imgn)`` (:func:`moved`)."""
        active = ~st.done & (st.n_iter < max_iter)
        Fy, gW, gb, slack, abs_gz = model.grad(st.imgy, st.Wy)
        stepsize = 1.0 / st.L
        Wn = prox_lanes(st.Wy - stepsize[None, :, None] * gW, stepsize)
        bn = st.by - (stepsize / kappa)[:, None] * gb
        dW = Wn - st.Wy
        center = getattr(model, "center", None)
        quadratic = getattr(model, "quadratic", False)
        if quadratic:  # squared loss: the excess from the images, no F (step_excess)
            if center is not None and dW.shape[1] > 1 and dW.shape[2] == 1:
                # several lanes of a centered design: ||dW||**2, the restart's product and center.Wn
                # in one reduction over the features, the intercept and the excess in one over the samples
                rows = [dW * dW, (st.Wy - Wn) * (Wn - st.W), center[..., None] * Wn]
                sums = jnp.sum(jnp.stack(rows), axis=1)  # (3, B, 1)
                if jax.default_backend() == "cpu":  # where the two reductions fuse with their products
                    imgn, bn = model.forward(Wn, bn, sums[2])
                    excess = model.step_excess(imgn, st.imgy)
                else:
                    imgn, bn, excess = model.forward_excess(Wn, bn, sums[2], st.b, st.imgy)
                dots = (sums[0, :, 0], None, sums[1, :, 0])
            else:
                imgn, bn = model.forward(Wn, bn)
                prods = [dW * dW, (st.Wy - Wn) * (Wn - st.W)]
                gram = isinstance(model, _Gram)
                if gram:  # <dW, G dW>: a sum over the features like the others
                    prods.append(dW * (imgn - st.imgy))
                if dW.shape[1] == 1:  # one lane: each reduction fuses with the products it reads
                    sums = [jnp.sum(a, axis=(0, 2)) for a in prods]
                else:  # several: one reduction of the stacked products
                    sums = jnp.sum(jnp.stack(prods), axis=(1, 3))
                excess = 0.5 * sums[2] if gram else model.step_excess(imgn, st.imgy)
                dots = (sums[0], None, sums[1])
            Fn = st.F  # F itself only at the checks
        elif center is not None and dW.shape[1] > 1 and dW.shape[2] == 1:
            # several lanes of a centered design: the sums over the features (the step's three inner
            # products, center.Wn for the image, |center|.|Wy| for the rounding) in one reduction
            rows = [dW * dW, gW * dW, (st.Wy - Wn) * (Wn - st.W), center[..., None] * Wn,
                    jnp.abs(center)[..., None] * jnp.abs(st.Wy)]  # fmt: skip
            sums = jnp.sum(jnp.stack(rows), axis=1)  # (5, B, 1)
            dots = sums[:3, :, 0]
            imgn, bn = model.forward(Wn, bn, sums[3])
            Fn = model.value(imgn, Wn)
            slack = slack + model.center_slack(abs_gz, sums[4], st.Wy)
        else:
            imgn, bn = model.forward(Wn, bn)
            if center is not None:
                slack = slack + model.center_slack(abs_gz, None, st.Wy)
            if dW.shape[1] == 1:  # one lane: each reduction fuses with the products it reads
                dots = (_dot(dW, dW), _dot(gW, dW), _dot(st.Wy - Wn, Wn - st.W))
            else:  # several: one reduction of the stacked products (square path, 10 lanes: 20% faster)
                dots = jnp.sum(jnp.stack([dW * dW, gW * dW, (st.Wy - Wn) * (Wn - st.W)]), axis=(1, 3))
            Fn = model.value(imgn, Wn)
        if not quadratic:
            excess = model.excess(Fn, Fy, dots[1], gb, bn - st.by)
        new, accept, beta = decide(st, active, bn, Fn, excess, dots, slack, quadratic)
        if defer:
            return new, (accept, beta, Wn, imgn)
        return new._replace(**moved(st, accept, beta, Wn, imgn))

    def decide(st: _State, active: Array, bn: Array, Fn: Array, excess: Array, dots: tuple, slack: Any,
               quadratic: bool) -> tuple[_State, Array, Array]:  # fmt: skip
        """The sufficient-decrease test, the step size, FISTA's momentum and restart from a step's
        candidate intercept ``bn`` and its sums: the lanes' scalars updated, whether each accepted
        the candidate, and its extrapolation ``beta`` (:func:`moved` updates the arrays)."""
        db = bn - st.by
        quad = dots[0] + (kappa * jnp.sum(db * db, axis=-1) if mode == "grad" else 0.0)
        # Wy is finite (an accepted point), so a non-finite entry of Wn makes quad non-finite
        finite = jnp.isfinite(excess if quadratic else Fn) & jnp.isfinite(quad)
        restart_dot = dots[2] + kappa * jnp.sum((st.by - bn) * (bn - st.b), axis=-1)
        accept, beta, t, L = _rule(st.L, st.t, L0, active, finite, excess, quad, slack, restart_dot)
        by = bn + beta[:, None] * (bn - st.b)
        pick = lambda new, old: jnp.where(accept.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        return st._replace(
            b=pick(bn, st.b),
            F=pick(Fn, st.F),
            by=pick(by, st.by),
            t=t,
            L=L,
            n_iter=st.n_iter + active.astype(jnp.int32),
            overflow=st.overflow | (active & ~finite),
        ), accept, beta

    def moved(st: _State, accept: Array, beta: Array, Wn: Array | None, imgn: Array) -> dict[str, Array]:
        """The arrays of ``st`` after a step whose candidate ``(Wn, imgn)`` the lanes ``accept``ed,
        with FISTA's extrapolation ``beta`` (``Wn`` None: the images only)."""
        lane = lambda a: a[None, :, None]  # noqa: E731
        pick = lambda new, old: jnp.where(lane(accept), new, old)  # noqa: E731
        out = {"img": pick(imgn, st.img), "imgy": pick(imgn + lane(beta) * (imgn - st.img), st.imgy)}
        if Wn is not None:
            out.update(W=pick(Wn, st.W), Wy=pick(Wn + lane(beta) * (Wn - st.W), st.Wy))
        return out

    def fused_steps(st: _State) -> _State:
        """``cfg.check_every`` of :func:`step` for a :func:`_fusable` model, by :mod:`jaxreg._fused`'s
        two kernels a step.  A step's decision and picks are made by the next step's kernels: the
        gradient kernel decides (``_fused.decide``, :func:`_rule`) and picks ``W`` and ``Wy``, the
        image kernel picks the images; the lanes' scalars travel in one block (``_fused.pack``), and
        the last step's decision is XLA's (``_fused.settle``)."""
        B = st.L.shape[0]
        f = lambda a: a.astype(dtype)  # noqa: E731
        zero = jnp.zeros(B, dtype)
        lanes = _fused.pack({
            "b": st.b[:, 0], "by": st.by[:, 0], "t": st.t, "L": st.L, "n_iter": f(st.n_iter),
            "overflow": f(st.overflow), "done": f(st.done), "max_iter": f(max_iter), "L0": L0,
            "kappa": kappa, "pending": zero, "accept": zero, "beta": zero,
        })  # fmt: skip
        # no candidate yet: the first step decides nothing (its sums are placeholders)
        sums = (jnp.zeros((plan.X.shape[0] // _fused.TN, B), dtype),) * 4
        W, img = st.W[..., 0], st.img[..., 0]

        def one(_: int, carry: tuple) -> tuple:
            W, Wy, Wp, img, imgy, XWp, lanes, sums = carry
            W, Wy, Wn, lanes, parts = _fused.grad_prox(plan.X, img, imgy, XWp, plan.s, plan.y, W, Wy, Wp,
                                                       plan.center, plan.l1, plan.l2, lanes, sums,
                                                       plan.positive, _rule)  # fmt: skip
            xw, img, imgy, sums = _fused.image(plan.X, Wn, parts, plan.s, plan.y, img, imgy, XWp, lanes)
            return W, Wy, Wn, img, imgy, xw, lanes, sums

        unroll = cfg.unroll or (1 if jax.default_backend() == "cpu" else 2)
        # the first turn's steps before the loop: their operands then need no copies to seed its state
        # (compiled for an H100, 8 kernels fewer a check on wide's working sets)
        peel = min(unroll if isinstance(unroll, int) and unroll > 1 else 1, cfg.check_every)
        carry = (W, st.Wy[..., 0], W, img, st.imgy[..., 0], img, lanes, sums)
        for i in range(peel):
            carry = one(i, carry)
        W, Wy, Wp, img, imgy, XWp, lanes, sums = jax.lax.fori_loop(peel, cfg.check_every, one, carry,
                                                                   unroll=unroll)  # fmt: skip
        rows = _fused.settle(_rule, lanes, sums)
        st = st._replace(
            W=W[..., None], Wy=Wy[..., None], img=img[..., None], imgy=imgy[..., None],
            b=rows["b"][:, None], by=rows["by"][:, None], t=rows["t"], L=rows["L"],
            n_iter=rows["n_iter"].astype(jnp.int32), overflow=rows["overflow"] > 0.5,
        )  # fmt: skip
        Zn = XWp + rows["b"]
        return st._replace(**moved(st, rows["accept"] > 0.5, rows["beta"], Wp[..., None], Zn[..., None]))

    img0, b0 = model.forward(W0, b0)
    B = W0.shape[1]
    st = _State(
        W=W0, b=b0, img=img0, F=model.value(img0, W0), Wy=W0, by=b0, imgy=img0,
        t=jnp.ones(B, dtype), L=L0, n_iter=jnp.zeros(B, jnp.int32),
        done=jnp.arange(B) >= (B if n_lanes is None else n_lanes), crit=jnp.full(B, jnp.inf, dtype),
        status=jnp.full(B, Status.MAX_ITER, jnp.int32), W_check=jnp.full_like(W0, jnp.nan),
        b_check=jnp.full_like(b0, jnp.nan), flat=jnp.zeros(B, jnp.int32), overflow=jnp.zeros(B, bool),
    )  # fmt: skip

    def steps(st: _State) -> _State:
        # on accelerators two steps per turn of the loop: its counter, the copies of the carried state
        # and the turn are paid once for two (compiled for an H100, wide's steps on 1024 features: 25
        # kernels for two instead of 2 x 18, and 1 condition; an H200 ran the wide path 5.7% faster;
        # benchmarks/README.md)
        if fused:
            return fused_steps(st)
        if jax.default_backend() == "cpu":
            return jax.lax.fori_loop(0, cfg.check_every, lambda _, x: step(x), st, unroll=cfg.unroll or 1)
        # On accelerators each step picks the last one's arrays, where its kernels read them, and the
        # loop carries the candidates: the picks are made once a check, not once a turn (compiled for
        # an H100, wide's turns on 256 and 1024 features launch 23 and 20 kernels instead of 25 and
        # 22, and its path about 7200 instead of 7830, with the same iterates); as fused_steps, the
        # first turn's steps before the loop

        def one(_: int, carry: tuple) -> tuple:
            st, pending = carry
            return step(st._replace(**moved(st, *pending)), defer=True)

        unroll = cfg.unroll or 2
        peel = min(unroll if isinstance(unroll, int) and unroll > 1 else 1, cfg.check_every)
        carry = step(st, defer=True)
        for i in range(1, peel):
            carry = one(i, carry)
        st, pending = jax.lax.fori_loop(peel, cfg.check_every, one, carry, unroll=unroll)
        return st._replace(**moved(st, *pending))

    if jax.default_backend() == "cpu":
        # A check, then a round of steps unless every lane is done: the sequence of a check before
        # the loop and one after each round, with the check compiled once (on the wide path, 57
        # kernels fewer, 0.3 s of compile time).  On an accelerator the conditional would cost a
        # round trip to the host per round, so there the check stays in the program twice.
        def body(st: _State) -> _State:
            st = check(st)
            return jax.lax.cond(jnp.all(st.done), lambda x: x, steps, st)

        return jax.lax.while_loop(lambda st: ~jnp.all(st.done), body, st)
    return jax.lax.while_loop(lambda st: ~jnp.all(st.done), lambda st: check(steps(st)), check(st))


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


class Setup(NamedTuple):
    """Per weight column quantities a solve needs once: ``(S, K)``, ``(S,)``, ``(S, p)``."""

    b_null: Array  # intercept of the intercept-only model
    tol_scale: Array  # 2 * mean_s f(y, b_null): the unit of ``tol``
    col_norm: Array  # (S, p) weighted norms of the (centered, for squared loss) columns


def setup(X: Array, y: Array, s: Array, loss: Loss, mode: str, gram: _Gram | None = None) -> Setup:
    """Compute :class:`Setup` for sample weights ``s`` of shape ``(n_samples, S)``.

    ``gram``: the weighted Gram matrices ``(S, p, p)`` of :func:`_gram_model` (one per weight column)
    when the caller has them; their diagonals are the squared column norms, which then cost no
    further pass over ``X``.
    """
    b_null = _initial_intercept(loss, y, s, mode, loss.n_outputs)
    if gram is not None:
        second = jnp.diagonal(gram.G, axis1=1, axis2=2).T  # (p, S), centered as the columns are
    else:
        # s.T @ X rather than X.T @ s: with one weight column XLA:CPU ran the pair below 6x slower
        second = (s.T @ (X * X)).T  # (p, S)
        if mode == "closed":
            second = second - (s.T @ X).T ** 2
    col_norm = jnp.sqrt(jnp.maximum(second, 0.0)).T
    return Setup(b_null, tol_scale(loss, y, s, b_null), col_norm)


def known_at(X: Array, y: Array, s: Array, loss: Loss, mode: str, W: Array, b: Array,
             gram: tuple[_Gram, Array, Array] | None = None,
             means: Array | None = None) -> Known:  # fmt: skip
    """:class:`Known` at ``(W, b)`` for the lanes ``s (n, B)``, as the checks of :func:`run` compute it
    (``means``: as given to :func:`run`, the weighted column means ``(p, groups)``)."""
    full = _full_model(X, y, s, loss, mode, means) if gram is None else gram[0]
    return _products(full, W, b)


def _full_model(X: Array, y: Array, s: Array, loss: Loss, mode: str, means: Array | None) -> _Design:
    """The whole problem as the checks of :func:`run` see it.

    With a fitted intercept and the weighted column means ``(p, groups)`` at hand, it is the
    centered design of :class:`_Design`, as the working-set solves are.  Its ``X.T (s u)`` then
    loses no precision to large column means, where the uncentered product carries
    ``means * sum_i s_i u_i``: with the intercept in closed form (squared loss) that is zero in exact
    arithmetic but ``eps |y|`` after rounding, and with columns offset by 1e4 and targets by 1e6 it
    held the duality gap of float64 paths above ``tol`` for 10 000 iterations.
    """
    if mode == "none" or means is None:
        return _Design(X, y, s, loss, mode)
    return _Design(X, y, s, loss, mode, jnp.repeat(means, s.shape[1] // means.shape[1], axis=1))


def _products(full: Any, W: Array, b: Array) -> Known:
    """:class:`Known` at ``(W, b)`` of :func:`_full_model` (or a Gram model); ``b`` the intercept of ``X``."""
    Z, b_model = full.forward(W, full.model_intercept(W, b))
    return Known(Z, full.intercept(W, b_model), full.dual(W, b_model, Z, full.value(Z, W))[0])


def uses_gram(loss: Loss, mode: str, n_samples: int, n_features: int) -> bool:
    """Whether :func:`run` solves on the whole design's weighted Gram matrix (squared loss, ``n >= p``)."""
    return isinstance(loss, SquaredLoss) and mode != "grad" and n_samples >= n_features


def _gram_model(
    Xk: Array, y: Array, s_g: Array, mode: str, blk: int, xtx: Array | None = None
) -> tuple[_Gram, Array, Array]:
    """Gram model of the columns ``Xk (n, k)`` for weight columns ``s_g (n, P)``; lanes repeat ``blk``.

    ``xtx``: ``Xk.T @ Xk`` when the caller has it and every weight column is uniform (then the
    weighted Gram matrices are its multiples).  Returns the model, the weighted column means
    ``mu (k, P)`` and means ``ybar (P,)`` (zeros without intercept), from which the intercept is
    ``ybar - mu.w``.
    """
    if xtx is None:
        Xs = s_g.T[:, :, None] * Xk[None]  # (P, n, k)
        G = jnp.einsum("pnk,nl->pkl", Xs, Xk)
    else:
        G = s_g[0][:, None, None] * xtx[None]
    # row vectors times Xk (not Xk.T times columns): XLA:CPU runs these several times faster; with
    # an intercept, q and the column means in one pass over Xk
    P = s_g.shape[1]
    rows = s_g * y[:, None] if mode != "closed" else jnp.concatenate([s_g * y[:, None], s_g], axis=1)
    qm = (rows.T @ Xk).T  # (k, P) or (k, 2P)
    q = qm[:, :P]
    yy = jnp.sum(s_g * y[:, None] ** 2, axis=0)
    mu = jnp.zeros_like(q)
    ybar = jnp.zeros_like(yy)
    if mode == "closed":
        mu, ybar = qm[:, P:], y @ s_g
        G = G - jnp.einsum("kp,lp->pkl", mu, mu)
        q = q - mu * ybar
        yy = yy - ybar**2
    lanes = lambda a, axis: jnp.repeat(a, blk, axis=axis)  # noqa: E731
    return _Gram(G, lanes(q, 1), lanes(yy, 0)), mu, ybar


def _power(G: Array, n_power: int = _N_POWER_DENSE) -> Array:
    """Largest eigenvalue of each symmetric positive semi-definite ``G (P, k, k)``."""
    v = _start(G.shape[:2], G.dtype)

    def body(_: int, v: Array) -> Array:
        w = jnp.einsum("pji,pj->pi", G, v)  # symmetric: see _Gram.forward
        return w / jnp.maximum(jnp.linalg.norm(w, axis=1, keepdims=True), jnp.finfo(G.dtype).tiny)

    v = jax.lax.fori_loop(0, n_power, body, v / jnp.linalg.norm(v, axis=1, keepdims=True))
    return jnp.sum(v * jnp.einsum("pji,pj->pi", G, v), axis=1)


#: working-set buckets (each kept where twice it fits in the features; see :func:`capacities`)
LADDER = (64, 256, 512, 1024, 4096)
#: at most this many buckets below all features (the largest that :func:`capacities` keeps)
MAX_BUCKETS = 3


def capacities(penalty: Penalty, n_samples: int, n_features: int, ladder: tuple[int, ...] = LADDER,
               max_buckets: int = MAX_BUCKETS) -> tuple[int, ...]:  # fmt: skip
    """Static working-set sizes: buckets below ``n_features`` for sparse penalties, then all features.

    The buckets are the sizes of ``ladder`` of which twice fits in the features, at most
    ``max_buckets`` of them, the largest.  For the lasso (:class:`~jaxreg.L1`) with few samples,
    they end below all features: a lasso solution has at most ``n_samples`` nonzeros (it is unique
    for data in general position), so when a bucket holds them (with the margin :func:`run` adds)
    the working set of one lane never outgrows it, and the larger buckets and a float32 solve on all
    features would be dead code in the compiled program.  :func:`run` adds all features back for
    several lanes (they share the union of their supports), and solves on all features in the
    data's dtype whatever the buckets cannot hold.

    Example:
      >>> import jaxreg as jr
      >>> from jaxreg.solvers import capacities
      >>> capacities(jr.L1(), 500, 5000), capacities(jr.L1(), 500, 200), capacities(jr.L2(), 500, 200)
      ((256, 512, 1024), (64, 200), (200,))
    """
    from .penalties import L1, L2, _ElasticNetFamily

    if isinstance(penalty, L2) or not isinstance(penalty, _ElasticNetFamily):
        return (n_features,)  # no sparsity to exploit
    # Each bucket is one more FISTA in the compiled program: 0.1 to 0.7 s of compile time on a CPU.
    # Sizes 4x apart instead of 2x took the wide benchmark's first call from 8.1 s to 5.5 s; a 512
    # bucket between 256 and 1024 takes the wide path's solves with 170 to 340 nonzeros off the
    # 1024 bucket (7% less time on the wide path, 15% on its CV); a 64 bucket below 256 saved no
    # time on the wide, square and CV paths and cost their first calls 0.1 to 0.6 s
    # (benchmarks/buckets.py, benchmarks/README.md).
    buckets = tuple(k for k in ladder if 2 * k <= n_features)
    need = n_samples + max(n_samples // 2, 32)
    if type(penalty) is L1 and buckets and need <= buckets[-1]:
        holds = next(i for i, k in enumerate(buckets) if need <= k)
        return buckets[: holds + 1][-max_buckets:]
    return buckets[-max_buckets:] + (n_features,)


def run(
    X: Array,
    y: Array,
    s: Array,
    loss: Loss,
    penalty: Penalty,
    W0: Array,
    b0: Array,
    su: Setup,
    tol: Array,
    cfg: _Config,
    groups: int = 1,
    gram: tuple[_Gram, Array, Array] | None = None,
    X_low: tuple[Array, Array] | None = None,
    means: Array | None = None,
    known: Known | None = None,
    limit: Array | None = None,
) -> Solution:
    """Solve the ``B`` lanes: ``s (n, B)``, ``W0 (p, B, K)``, ``b0 (B, K)``, ``su`` fields per lane.

    The lanes come in ``groups`` consecutive groups of equal size that share their sample weights.
    ``gram`` is :func:`_gram_model` of the whole design when the caller has it already (along a path,
    where :func:`uses_gram` holds).  ``X_low`` is :func:`low_design` for ``cfg.mixed``, when the caller
    has it already, and ``means`` the weighted column means ``(p, groups)`` of a fitted intercept
    in gradient mode (the centers of the implicitly centered designs, see :class:`_Design`).
    ``known`` is :class:`Known` at ``(W0, b0)`` when the caller has it (the last check of the alpha
    before, down a path), so that the first check makes no pass over ``X``.  ``limit (B,)``, when
    given, replaces ``cfg.max_iter`` per lane (a lane of ``limit`` 0 makes no iteration; rounds of
    recycled lanes, :func:`jaxreg.path._recycled`).

    Working sets: each outer iteration checks the full duality gap and the optimality of every
    feature, takes the features that are nonzero in some lane plus the largest violators
    ``max |v_j| / l1_j`` up to a static capacity (the smallest of ``cfg.capacities`` that holds one
    and a half times the nonzeros, at least 32 more; all features when none does), and solves that
    restricted problem to ``0.5 * tol`` with FISTA, warm-started.
    Squared loss is solved on the working set's weighted Gram matrix when that is cheaper
    (``k <= n / 4``, ``cfg.gram_ratio``): then an iteration costs ``k**2`` per lane instead of
    ``2 n k``.  Under ``cfg.mixed`` (:func:`mixed_precision`) the working-set solves of float64
    data run in float32 while every check of the whole problem stays in float64; what float32 cannot
    finish goes on in float64 on all features, as does what buckets ending below all features
    cannot hold; without ``cfg.fallback`` such lanes end with status :data:`_HANDOVER` for the caller
    to solve again (:func:`with_fallback`).  The step size of a
    working-set solve comes from the curvature of the loss at the last check (see ``curved``).
    """
    n, p = X.shape
    B = W0.shape[1]
    K = loss.n_outputs
    blk = B // groups
    mode = cfg.intercept
    max_iter = cfg.max_iter if limit is None else limit
    dtype = X.dtype
    tol_abs = tol * su.tol_scale
    root = jnp.sqrt(su.tol_scale)
    floor = jnp.sqrt(jnp.finfo(dtype).eps) * jnp.max(su.col_norm, axis=1, keepdims=True)
    R0 = (root[:, None] / jnp.maximum(su.col_norm, floor)).T  # (p, B)
    caps = cfg.capacities or (p,)
    if caps[-1] != p and B > 1:  # the union of the lanes' supports may outgrow the buckets
        caps = caps + (p,)
    quadratic = isinstance(loss, SquaredLoss) and mode != "grad"
    s_g = s.reshape(n, groups, blk)[:, :, 0]
    # Squared loss with n >= p: one weighted Gram matrix per group replaces X in every later step.
    precompute = uses_gram(loss, mode, n, p)
    if precompute:
        full, mu_full, ybar_full = _gram_model(X, y, s_g, mode, blk) if gram is None else gram
    l1 = jax.vmap(lambda pen: pen._strengths(p, dtype)[0])(penalty) if caps != (p,) else None
    n_power = _N_POWER if caps != (p,) else _N_POWER_DENSE
    if cfg.mixed and X_low is None and not precompute:  # the Gram model needs no float32 design
        X_low = low_design(X, s, mode)
    # weighted column means per group, for the implicitly centered float64 designs (see _Design)
    if means is None and mode != "none" and not precompute:
        means = rmatmul(X, s_g)  # (p, groups)
    if not precompute:
        full = _full_model(X, y, s, loss, mode, means)

    def curved(lip: Any, curv: Array) -> Array:
        """The Lipschitz constant of the smooth part's gradient per lane, from ``lip(weights)``.

        Squared loss: the weighted Gram matrix's largest eigenvalue, one per group of lanes.  Other
        losses: that of ``X.T diag(s f'') X`` with ``f''`` the loss's curvature at the last check,
        per lane: on the L1-logistic benchmark, 4 to 6.5 times below ``max f''`` times that of
        ``X.T diag(s) X`` along the second half of the path, so steps 4 to 6.5 times longer.  The
        curvature grows where the iterate moves to less certain predictions; backtracking doubles
        ``L`` there.
        """
        if quadratic:
            return jnp.repeat(lip(s_g), blk) * curv
        return lip(s * curv)

    def inner(k: int, low: bool, W: Array, b: Array, score: Array, curv: Array, tol_in: Array, n_iter: Array):
        # Under cfg.mixed (low) the inner solves run in float32.  Their models are built in float64
        # and then rounded: centered Gram matrices and columns, and targets shifted by a constant
        # for losses of the residual (the intercept absorbs both), so large means cost no precision.
        wdt = jnp.float32 if low else dtype
        cast = functools.partial(_as_dtype, dtype=wdt)
        # all features on an accelerator: zero columns up to a multiple of _ALIGN (see _aligned)
        pad = _aligned(p, penalty) - p if k == p and not low and jax.default_backend() != "cpu" else 0
        keep = None
        if k == p and not pad:
            idx, pen, Wk, Rk = None, cast(penalty), cast(W), cast(R0)
        elif k == p:  # the last feature repeated, then zeroed: the padding's columns and coefficients
            idx = jnp.minimum(jnp.arange(k + pad), p - 1)
            keep = jnp.arange(k + pad) < p
            Wk = cast(jnp.where(keep[:, None, None], W[idx], 0.0))
            pen, Rk = cast(penalty.take(idx)), cast(R0[idx])
        else:
            # top_k of float32 keys: XLA:CPU's float64 top_k sorts, 8x slower (the order need not be exact)
            idx = jnp.sort(jax.lax.top_k(score.astype(jnp.float32), k)[1])
            pen, Wk, Rk = cast(penalty.take(idx)), cast(W[idx]), cast(R0[idx])

        def rows(a: Array, axis: int = 0) -> Array:
            """``a`` at the features ``idx`` along ``axis``, the padding's zero."""
            out = jnp.take(a, idx, axis=axis)
            if keep is None:
                return out
            return jnp.where(jnp.expand_dims(keep, tuple(i for i in range(a.ndim) if i != axis)), out, 0.0)

        k = k + pad
        # the samples of a design on an accelerator: zero rows of zero weight up to a multiple of
        # _ALIGN_SAMPLES, once per solve (XLA:GPU's products would pad X and G at every step)
        n_pad = -(-n // _ALIGN_SAMPLES) * _ALIGN_SAMPLES - n if jax.default_backend() != "cpu" else 0
        samples = functools.partial(_pad_rows, n=n + n_pad)
        budget = max_iter - n_iter
        if low:  # float32 that has not converged by then hands over to float64
            budget = jnp.minimum(budget, _MIXED_MAX_INNER)
        center, y_off = jnp.zeros((k, B), dtype), jnp.zeros((), dtype)
        # the models of the design take centered targets: float32 would lose the residuals of targets
        # of mean 1e6 to rounding, and float64 steps on accelerators round at eps |y - y_off| (grad)
        y_mean = jnp.sum(s[:, 0] * y) if mode != "none" and loss.of_residual else y_off
        if precompute:
            if idx is None:
                model, mu, ybar = full, mu_full, ybar_full
            else:
                model = _Gram(rows(rows(full.G, 1), 2), rows(full.q), full.yy)
                mu, ybar = rows(mu_full), ybar_full
            model = _Gram(cast(model.G), cast(model.q), cast(model.yy)) if low else model
            L0 = 1.05 * jnp.repeat(_power(model.G, n_power), blk)
        elif quadratic and k <= cfg.gram_ratio * n:
            model, mu, ybar = _gram_model(X if idx is None else rows(X, 1), y, s_g, mode, blk)
            model = _Gram(cast(model.G), cast(model.q), cast(model.yy))
            L0 = 1.05 * jnp.repeat(_power(model.G, n_power), blk)
        elif low:  # explicitly centered float32 columns (low_design)
            Xk, c = X_low if idx is None else (X_low[0][:, idx], X_low[1][idx])
            center = jnp.broadcast_to(c[:, None], (k, B))
            y_off = y_mean
            Xk = samples(Xk)
            model = _Design(Xk, cast(samples(y - y_off)), cast(samples(s)), cast(loss), mode)
            L0 = 1.05 * curved(lambda w: lipschitz(Xk, cast(samples(w)), mode, n_power), cast(curv))
        else:  # float64, implicitly centered where the intercept is a free variable
            Xk = samples(X if idx is None else rows(X, 1))
            mk = None if means is None else (means if idx is None else rows(means))
            center = jnp.zeros((k, B), dtype) if mk is None else jnp.repeat(mk, blk, axis=1)
            y_off = y_mean
            model = _Design(Xk, samples(y - y_off), samples(s), loss, mode, None if mk is None else center)
            # the centers per group for squared loss (weights per group), else per lane
            mc = None if mk is None else (mk if quadratic else center)
            L0 = 1.05 * curved(lambda w: lipschitz(Xk, samples(w), mode, n_power, center=mc), curv)
        L0 = jnp.maximum(L0, jnp.finfo(wdt).tiny)
        # the intercept's own curvature: sum_i s_i f''_i (the weights sum to one)
        b_curv = curv if quadratic else jnp.sum(s * curv, axis=0)
        kappa = jnp.clip(1.05 * cast(b_curv) / L0, jnp.finfo(wdt).eps, 1.0) if mode == "grad" else None
        # the model of X - center with targets y - y_off has the intercept b + center.w - y_off
        offset = lambda Wc: y_off - jnp.einsum("kb,kbo->bo", center, Wc)  # noqa: E731
        b_in = b - offset(W if idx is None else rows(W))
        if K > 1 and mode == "grad":
            # the centering moves all classes' intercepts by about center.W; the softmax is blind to
            # a common shift, float32 is not (at 1e2 it loses 1e-5 of the logits, and float32 solves
            # of columns offset by 100 ran their 2000 iterations before handing over to float64)
            b_in = b_in - jnp.mean(b_in, axis=-1, keepdims=True)
        b_in = cast(b_in)
        st = fista(model, pen, Wk, b_in, L0, cast(tol_in), budget, (Rk, cast(root)), cfg, loss.has_dual, kappa)
        W_k = st.W.astype(dtype)
        b_new = st.b.astype(dtype) + offset(W_k)
        if isinstance(model, _Gram) and mode == "closed":
            b_new = (jnp.repeat(ybar, blk) - jnp.sum(jnp.repeat(mu, blk, axis=1) * W_k[..., 0], axis=0))[:, None]
        if K > 1 and mode == "grad":
            # the multinomial loss is blind to a shift of all classes' intercepts; the centering
            # offsets (one per class) shift their sum, which the intercept-only start sets to zero
            b_new = b_new - jnp.mean(b_new, axis=-1, keepdims=True)
        if idx is None or keep is not None:
            W_new = W_k[:p]
        else:
            W_new = jnp.zeros((p, B, K), dtype).at[idx].set(W_k)
        # float32 could not finish (stalled, overflowed or ran out of its iterations): float64 goes on
        if low:
            out = (st.status == Status.MAX_ITER) & (st.n_iter >= _MIXED_MAX_INNER)
            short = (st.status == Status.STALLED) | (st.status == Status.NONFINITE) | out
        else:
            short = jnp.zeros(B, bool)
        return W_new, b_new, n_iter + st.n_iter, jnp.where(short, Status.MAX_ITER, st.status), jnp.any(short)

    def check(W: Array, b: Array, n_iter: Array, done: Array, status: Array, crit: Array,
              known: Known | None = None):  # fmt: skip
        Z, b, v = _products(full, W, b) if known is None else known
        F = full.value(Z, W)
        if precompute and mode == "closed":
            b = (jnp.repeat(ybar_full, blk) - jnp.sum(jnp.repeat(mu_full, blk, axis=1) * W[..., 0], axis=0))[:, None]
        new_crit, v = gap(full, penalty, W, full.model_intercept(W, b), Z, F, (R0, root), mode, loss.has_dual,
                          jnp.ones(B, dtype), v)  # fmt: skip
        bad = ~jnp.isfinite(new_crit) | (status == Status.NONFINITE)
        stalled = status == Status.STALLED
        converged = (new_crit <= tol_abs) & ~bad
        stop = (converged | bad | stalled | (n_iter >= max_iter)) & ~done
        new_status = jnp.where(
            converged,
            Status.CONVERGED,
            jnp.where(bad, Status.NONFINITE, jnp.where(stalled, Status.STALLED, Status.MAX_ITER)),
        )
        status = jnp.where(stop, new_status.astype(jnp.int32), status)
        crit = jnp.where(done, crit, new_crit)
        if quadratic:
            curv = jnp.ones(B, dtype)
        else:  # per sample and lane (n, B), floored at 1e-3 of the loss's bound (see curved)
            bound = loss._curvature(y, Z)
            curv = jnp.where(s > 0, jnp.maximum(loss._local_curvature(y, Z), 1e-3 * bound), 0.0)
        return b, done | stop, status, crit, v, curv, Z

    def choose(W: Array, v: Array, exact: Array) -> tuple[Array, Array]:
        if l1 is None:  # no working sets: all features, in float64 once float32 fell short
            return jnp.zeros(p, dtype), jnp.where(exact, len(caps), 0).astype(jnp.int32)
        lam = l1.T  # (p, B)
        viol = jnp.max(jnp.abs(v), axis=2)  # (p, B)
        score = jnp.max(jnp.where(lam > 0, viol / jnp.where(lam > 0, lam, 1.0), jnp.inf), axis=1)
        forced = jnp.any(W != 0, axis=(1, 2)) | jnp.any(lam == 0, axis=1)
        score = jnp.where(forced, jnp.inf, score)
        nnz = jnp.sum(forced)
        need = nnz + jnp.maximum(nnz // 2, 32)
        # len(caps): more than the buckets hold.  All comparisons at once: the default method, a loop
        # of scalar steps, launched 18 kernels a working-set iteration compiled for an H100
        branch = jnp.searchsorted(jnp.asarray(caps), need, method="compare_all")
        if caps[-1] == p:
            branch = jnp.minimum(branch, len(caps) - 1)
        branch = jnp.where(exact, len(caps), branch)  # float32 fell short: all features in float64
        return score, branch.astype(jnp.int32)

    # a solve on all features in the data's dtype beyond the buckets: for what float32 could not
    # finish (cfg.mixed) or what the buckets cannot hold (they end below all features); in the
    # program only with cfg.fallback
    beyond = cfg.mixed or caps[-1] != p

    def handover(branch: Array, done: Array, status: Array) -> tuple[Array, Array]:
        """Without the fallback in the program, the lanes that need it end with _HANDOVER."""
        if not beyond or cfg.fallback:
            return done, status
        out = branch >= len(caps)  # all features in float64: more than the buckets hold, or exact
        return done | out, jnp.where(out & ~done, _HANDOVER, status)

    class Outer(NamedTuple):
        W: Array
        b: Array
        n_iter: Array
        done: Array
        status: Array
        crit: Array
        score: Array
        branch: Array
        curv: Array
        it: Array
        exact: Array  # () bool: a float32 working-set solve fell short (cfg.mixed)
        Z: Array  # the image and v = X.T (s u) of the last check
        v: Array
        # (B,) factor of the working-set solves' tolerance.  A lane that a working-set solve did not
        # move, but that the check of the whole problem finds unconverged, is stuck between two gaps
        # that round differently: under cfg.mixed float32 cannot resolve it, and all lanes go on in
        # float64 (before, they spun to _MIXED_MAX_OUTER); otherwise its tolerance is halved (a
        # float32 path on the Gram matrix had spun at 1.002 tol to _MAX_OUTER)
        tight: Array

    def unstick(o: Outer, stuck: Array, done: Array, exact: Array) -> tuple[Array, Array]:
        """``exact`` and ``tight`` after a check that found the lanes ``stuck`` unmoved and not ``done``."""
        stuck = stuck & ~done
        if not cfg.mixed:
            return exact, jnp.where(stuck, 0.5 * o.tight, o.tight)
        return exact | jnp.any(stuck), jnp.where(stuck & o.exact, 0.5 * o.tight, o.tight)

    def switch(branch: Array, tol_in: Array, *args: Array) -> tuple[Array, ...]:
        # one branch per capacity (in float32 under cfg.mixed), and with cfg.fallback one more on all
        # features in the data's dtype (see beyond)
        plan = [(k, cfg.mixed) for k in caps] + ([(p, False)] if beyond and cfg.fallback else [])
        branches = [
            functools.partial(lambda k, low, t, W, b, sc, cv, ni: inner(k, low, W, b, sc, cv, t, ni),
                              k, low, tol_in if k == p and not low else 0.5 * tol_in)  # fmt: skip
            for k, low in plan
        ]
        return jax.lax.switch(branch, branches, *args)

    def body(o: Outer) -> Outer:
        tol_in = jnp.where(o.done, jnp.inf, o.tight * tol_abs)
        W, b, n_iter, st_in, short = switch(o.branch, tol_in, o.W, o.b, o.score, o.curv, o.n_iter)
        # a lane whose inner solve stalled (or overflowed) stops with that status unless it converged
        status = jnp.where(o.done | (st_in < Status.NONFINITE), o.status, st_in)
        b, done, status, crit, v, curv, Z = check(W, b, n_iter, o.done, status, o.crit)
        # float32 working sets that keep failing the float64 check also hand over to float64
        exact = (o.exact | short | (o.it + 1 >= _MIXED_MAX_OUTER)) if cfg.mixed else o.exact
        exact, tight = unstick(o, n_iter == o.n_iter, done, exact)
        score, branch = choose(W, v, exact)
        done, status = handover(branch, done, status)
        return Outer(W, b, n_iter, done, status, crit, score, branch, curv, o.it + 1, exact, Z, v, tight)

    n_iter0 = jnp.zeros(B, jnp.int32)
    status0 = jnp.full(B, Status.MAX_ITER, jnp.int32)
    crit0 = jnp.full(B, jnp.inf, dtype)
    if jax.default_backend() != "cpu":
        # a check before the loop and one after each inner solve: on an accelerator a conditional
        # would cost a round trip to the host per outer iteration (see fista)
        b, done, status, crit, v, curv, Z = check(W0, b0, n_iter0, jnp.zeros(B, bool), status0, crit0, known)
        exact = jnp.zeros((), bool)
        score, branch = choose(W0, v, exact)
        done, status = handover(branch, done, status)
        it0 = jnp.zeros((), jnp.int32)
        tight = jnp.ones(B, dtype)
        o = Outer(W0, b, n_iter0, done, status, crit, score, branch, curv, it0, exact, Z, v, tight)
        o = jax.lax.while_loop(lambda o: ~jnp.all(o.done) & (o.it < _MAX_OUTER), body, o)
        return Solution(o.W, o.b, o.n_iter, o.crit, o.status, Known(o.Z, o.b, o.v))

    # On a CPU, the same sequence with the check compiled once: each outer iteration checks the
    # products at its iterate, then, unless every lane is done, solves the working sets and takes
    # the products at the new iterate (the first from ``known``: no pass over X).
    class Loop(NamedTuple):
        o: Outer
        short: Array  # () bool: the last float32 working-set solve fell short
        still: Array  # (B,) bool: the last working-set solve left the lane where it was
        stop: Array  # () bool: every lane done, or _MAX_OUTER inner solves

    def solve(lp: Loop) -> Loop:
        o = lp.o
        tol_in = jnp.where(o.done, jnp.inf, o.tight * tol_abs)
        W, b, n_iter, st_in, short = switch(o.branch, tol_in, o.W, o.b, o.score, o.curv, o.n_iter)
        status = jnp.where(o.done | (st_in < Status.NONFINITE), o.status, st_in)
        k = _products(full, W, b)
        o = o._replace(W=W, b=k.b, n_iter=n_iter, status=status, it=o.it + 1, Z=k.Z, v=k.v)
        return Loop(o, short, n_iter == lp.o.n_iter, lp.stop)

    def step_cpu(lp: Loop) -> Loop:
        o = lp.o
        b, done, status, crit, v, curv, Z = check(o.W, o.b, o.n_iter, o.done, o.status, o.crit,
                                                  Known(o.Z, o.b, o.v))  # fmt: skip
        exact = (o.exact | lp.short | (o.it >= _MIXED_MAX_OUTER)) if cfg.mixed else o.exact
        exact, tight = unstick(o, lp.still, done, exact)
        score, branch = choose(o.W, v, exact)
        done, status = handover(branch, done, status)
        o = Outer(o.W, b, o.n_iter, done, status, crit, score, branch, curv, o.it, exact, Z, v, tight)
        stop = jnp.all(done) | (o.it >= _MAX_OUTER)
        return jax.lax.cond(stop, lambda x: x, solve, Loop(o, lp.short, lp.still, stop))

    k0 = _products(full, W0, b0) if known is None else known
    zero = jnp.zeros((), jnp.int32)
    curv0 = jnp.zeros((B,) if quadratic else (n, B), dtype)  # score, branch and curv: set by the first check
    o = Outer(W0, k0.b, n_iter0, jnp.zeros(B, bool), status0, crit0, jnp.zeros(p, dtype), zero, curv0, zero,
              jnp.zeros((), bool), k0.Z, k0.v, jnp.ones(B, dtype))  # fmt: skip
    lp0 = Loop(o, jnp.zeros((), bool), jnp.zeros(B, bool), jnp.zeros((), bool))
    lp = jax.lax.while_loop(lambda lp: ~lp.stop, step_cpu, lp0)
    o = lp.o
    return Solution(o.W, o.b, o.n_iter, o.crit, o.status, Known(o.Z, o.b, o.v))


_MAX_OUTER = 100
#: outer iterations, and iterations of one float32 solve, after which a mixed-precision solve goes
#: on in float64 on all features (the benchmark paths need at most 4 and about 550)
_MIXED_MAX_OUTER = 20
_MIXED_MAX_INNER = 2000

#: On accelerators a solve on all features pads them with zero columns to a multiple of this.
#: XLA:GPU's matrix products split the contracted axis into tiles and otherwise pad ``X`` (and ``W``)
#: at every step: compiled for an H100, one turn of the loop of ``benchmarks/iteration.py`` (wide, 20
#: lanes, two steps) launched 31 kernels with ``p = 5000``, among them a copy of ``X`` padded to 5024
#: columns, and 28 with 5024 or 5120 (``benchmarks/README.md``).
_ALIGN = 128

#: On accelerators the working-set solves on a design pad their samples with zero rows of zero
#: weight to a multiple of this.  XLA:GPU's products split the contracted samples (``X.T @ G``) into
#: ``split_k`` pieces and, where they do not divide, pad ``X`` and ``G`` inside the loop: compiled for
#: an H100, wide's (500 samples) steps on 256 and 512 features launched 20 kernels a turn, three of
#: them pads (``X`` to 512 or 504 rows, ``G`` twice), and L1-logistic's (2000) on 64 and 256 features
#: 27 and 25; padded to 512 and 2016 rows, 18, 18, 24 and 22.  2048 rows (128) took one kernel more a
#: turn on L1-logistic's largest working set (XLA fused its elementwise work differently).
_ALIGN_SAMPLES = 32


def _aligned(p: int, penalty: Penalty) -> int:
    """``p`` rounded up to a multiple of :data:`_ALIGN`, for a penalty that can be restricted to some
    features (``take``); the padding's columns are zero, so its coefficients stay zero."""
    return -(-p // _ALIGN) * _ALIGN if hasattr(penalty, "take") else p


@compiled(static_argnames=("cfg", "batch_shape", "fit_intercept"))
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
    batch_shape: tuple[int, ...],
    fit_intercept: bool,
) -> Result:
    """Jitted core of :func:`solve`: ``s (n, 1)`` shared by the lanes of ``penalty``, shaped as a
    :class:`Result` of ``batch_shape`` (each reshape outside a program would compile one)."""
    n, p = X.shape
    K = loss.n_outputs
    B = int(np.prod(batch_shape, dtype=int))
    su = setup(X, y, s, loss, cfg.intercept)
    su = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (B,) + a.shape[1:]), su)
    if W0 is None:
        W0 = jnp.zeros((p, B, K), X.dtype)
    if b0 is None:
        b0 = su.b_null
    st = run(X, y, jnp.broadcast_to(s, (n, B)), loss, penalty, W0, b0, su, tol, cfg)
    return _result(st, batch_shape, K, fit_intercept)


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
        ``tol * ||y - mean(y)||**2 / n``: scikit-learn's meaning).  A new value recompiles only when
        it crosses 1e-5 for float64 data on a CPU: from there up, the working sets are solved in
        float32 and the gap of the whole problem is checked in float64 (:func:`mixed_precision`).
      max_iter: maximal number of iterations per lane (static).
      coef_init, intercept_init: warm start, shaped like the result's ``coef`` and ``intercept``.
      check_every: iterations between two convergence checks (static).

    Returns:
      :class:`Result` with ``coef`` of shape ``batch_shape + (n_features,)`` (``+ (n_classes,)`` for
      multinomial) and the per-lane ``intercept``, ``n_iter``, ``gap``, ``converged``, ``status``.
      ``coef`` and ``intercept`` are differentiable with respect to ``X``, ``y``, ``sample_weight`` and
      the penalty's leaves, by implicit differentiation (:mod:`jaxreg.implicit`).

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
    V.check_tol_max_iter(tol, max_iter, X.dtype)
    V.check_positive_int("check_every", check_every)
    n, p = X.shape
    check_penalty(penalty, p)
    _warn_ill_posed(penalty, X.shape)
    batch_shape = penalty.batch_shape
    B = int(np.prod(batch_shape, dtype=int))
    # concrete leaves and starting points are shaped on the host (a copy to the device): outside a
    # program, each reshape would compile one
    pen = jax.tree_util.tree_map(lambda a: V.host_reshape(a, (B,) + a.shape[len(batch_shape) :]),
                                 penalty.broadcast(batch_shape, p, X.dtype))  # fmt: skip
    K = loss.n_outputs
    W0 = b0 = None
    coef_shape = batch_shape + ((p,) if K == 1 else (p, K))
    if coef_init is not None:
        host = V.concrete(coef_init)
        W0 = jnp.asarray(coef_init, X.dtype) if host is None else np.asarray(host, X.dtype)
        if W0.size != B * p * K:
            raise ValueError(f"coef_init must have shape {coef_shape} like the result's coef, got {W0.shape}")
        W0 = (jnp if host is None else np).moveaxis(W0.reshape((B, p, K)), 0, 1)
        W0 = W0 if host is None else V.to_device(W0)
    if intercept_init is not None:
        host = V.concrete(intercept_init)
        b0 = jnp.asarray(intercept_init, X.dtype) if host is None else np.asarray(host, X.dtype)
        if b0.size not in (B, B * K):
            shape = batch_shape + ((K,) if K > 1 else ())
            raise ValueError(f"intercept_init must have shape {shape} like the result's intercept, got {b0.shape}")
        xp = jnp if host is None else np
        b0 = xp.broadcast_to(b0.reshape(batch_shape + (-1,)), batch_shape + (K,)).reshape(B, K)
        b0 = b0 if host is None else V.to_device(b0)
    cfg = _Config(_intercept_mode(loss, fit_intercept), int(max_iter), int(check_every), capacities(penalty, n, p),
                  mixed=mixed_precision(X.dtype, tol, X.shape), fused=FUSED)  # fmt: skip
    # The loop is never differentiated: coef and intercept get the implicit derivative instead.
    args = detach((X, y, V.host_reshape(s, (n, 1)), loss, pen, W0, b0, V.to_device(tol, X.dtype)))
    res = with_fallback(
        lambda fb: _solve_batched(*args, cfg._replace(fallback=fb), batch_shape, bool(fit_intercept)),
        cfg, (args, penalty), lambda r: r.status,
    )
    return differentiable(res, X, y, s, loss, pen, fit_intercept)


def _warn_ill_posed(penalty: Penalty, shape: tuple[int, int]) -> None:
    """Warn for an unpenalized fit (``alpha = 0``) with at least as many features as samples."""
    alpha = V.concrete(penalty.alpha)
    n, p = shape
    if alpha is not None and p >= n and np.any(np.asarray(alpha, dtype=float) == 0):
        warnings.warn(
            f"alpha = 0 leaves the problem unpenalized with n_features={p} >= n_samples={n}: the "
            "minimizer is not unique (the solver returns one of them); use alpha > 0",
            UserWarning,
            stacklevel=3,
        )


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
    sc = V.concrete(s)
    if yc is not None and sc is not None and np.any(sc == 0):
        # The targets that count are those with positive weight (a class may vanish with them).
        loss.check_target(yc[sc > 0])
    if loss.n_outputs > 1:
        y = y.astype(jnp.int32)
    return X, y, s, loss


def _result(st: Solution, batch_shape: tuple[int, ...], K: int, fit_intercept: bool) -> Result:
    """Shape the lanes of ``st`` (``K`` outputs per sample) into a :class:`Result` of ``batch_shape``."""
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
