"""FISTA steps of a lasso or elastic net on a centered design in two Pallas (Triton) kernels a step.

XLA compiles a batched step of :func:`jaxreg.solvers.fista` (squared loss, intercept in closed form,
centered columns, several lanes) into about ten kernels on a GPU: the two matrix products, the
gradient's centering, the prox, two stacked reductions (the step's inner products over the features,
the intercept and the excess over the samples) and the elementwise updates.  On an H200 they kept
the device busy 51 us a batched iteration of the wide path, most of it in the reductions
(``benchmarks/README.md``); the products themselves read ``X`` in a few us.  Here a step is two
kernels.  The first takes a tile of features: every program decides on the last step's candidate
(:func:`decide`: the sufficient-decrease test, step size and restart of
:func:`jaxreg.solvers.fista`, its ``_rule``), makes that decision's picks of ``W``, ``Wy`` and the
image at the extrapolated point, and then the gradient, the prox and the per-lane sums over its
features.  The second takes a tile of samples: the decision's picks of the images, this step's
image and its per-lane sums over the samples, which the next step's first kernel reads.  The
lanes' scalars travel between the kernels in one block (:func:`pack`); XLA decides on the last
candidate of a round of steps (:func:`settle`).

Opt-in (``jaxreg.solvers.FUSED``), until a GPU has timed it against XLA's step.  Triton works on
power-of-two tiles: the samples are padded with rows of zero weight to a multiple of :data:`TN`
and the lanes to a power of two (at least 16) with copies of the first lane that are done from
the start, once per solve (:func:`jaxreg.solvers.fista`).  On a CPU the kernels run in Pallas'
interpreter (tests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: features per program of the gradient kernel; samples per chunk of its loop (powers of two, read
#: when a solver is traced; untuned: ``benchmarks/gpu.sh OUT fused`` times others)
TK, TN_LOOP = 32, 32
#: lanes per program of both kernels (fewer: more programs).  Untimed: at the wide path's largest
#: working set (1024 features, 512 padded samples, 32 padded lanes) the image kernel runs 16 programs
#: of 1M multiply-adds, about 4 us at an H100 SM's float64 tensor-core peak (0.5 TFLOP/s); 16 lanes
#: halve that with twice the programs, and the same kernels a turn (``gpu.sh OUT fused`` times both)
TB = 32
#: samples per program of the image kernel; features per chunk of its loop (the next gradient kernel
#: adds up the image kernel's per-program sums: the wide path's 512 padded samples, 16 rows)
TN, TK_LOOP = 32, 64


def lanes_padded(B: int) -> int:
    """The lanes' count in the kernels: a power of two, at least 16 (Triton's matrix products)."""
    return max(16, 1 << (B - 1).bit_length())


def rows_padded(n: int) -> int:
    """The samples' count in the kernels: a multiple of both kernels' tiles of samples."""
    m = max(TN, TN_LOOP)
    return -(-n // m) * m


def fits(k: int) -> bool:
    """Whether ``k`` features tile for both kernels (the image kernel sums the gradient kernel's
    ``k / TK`` partial sums four at a time)."""
    return k % (4 * TK) == 0 and k % TK_LOOP == 0


#: run the kernels in Pallas' interpreter: ``None`` on a CPU backend (``jax.default_backend()``)
INTERPRET: bool | None = None


def _interpret() -> bool:
    return jax.default_backend() == "cpu" if INTERPRET is None else INTERPRET


def available() -> bool:
    """Whether the kernels can run: compiled by Triton on a GPU, or in the interpreter."""
    return _interpret() or (jax.default_backend() == "gpu" and _triton() is not None)


@functools.cache
def _pallas() -> Any:
    """``jax.experimental.pallas``, imported at the first trace of a kernel (not with jaxreg)."""
    from jax.experimental import pallas

    return pallas


@functools.cache
def _triton() -> Any:
    """Pallas' Triton module, or None where this jax has none."""
    try:
        from jax.experimental.pallas import triton
    except ImportError:  # pragma: no cover - depends on the installed jax
        return None
    return triton


def _compiler_params() -> Any:
    if _interpret():
        return None
    plt = _triton()
    params = getattr(plt, "CompilerParams", None) or plt.TritonCompilerParams  # the older name
    return params(num_warps=4, num_stages=2)


def _dot_t(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a.T @ b`` at full precision."""
    return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())), precision=jax.lax.Precision.HIGHEST,
                               preferred_element_type=a.dtype)  # fmt: skip


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jax.lax.dot_general(a, b, (((1,), (0,)), ((), ())), precision=jax.lax.Precision.HIGHEST,
                               preferred_element_type=a.dtype)  # fmt: skip


#: the rows of the lanes' block ``(LANE_ROWS, B)`` that the kernels carry from step to step: each
#: lane's intercept, extrapolated intercept, momentum ``t``, ``L``, iterations, whether a step
#: overflowed since the last check, whether the lane is done, its ``max_iter``, ``L0`` and ``kappa``;
#: whether a candidate awaits its decision, and the last decision (accepted: 1 or 0, extrapolation)
ROWS = ("b", "by", "t", "L", "n_iter", "overflow", "done", "max_iter", "L0", "kappa", "pending", "accept",
        "beta")  # fmt: skip
#: rows of the lanes' block (a power of two for Triton; the last ones unused)
LANE_ROWS = 16


def pack(rows: dict[str, jax.Array]) -> jax.Array:
    """The lanes' block ``(LANE_ROWS, B)`` of the rows :data:`ROWS` ``(B,)``."""
    block = jnp.stack([rows[name] for name in ROWS])
    return jnp.pad(block, [(0, LANE_ROWS - len(ROWS)), (0, 0)])


def unpack(lanes: jax.Array) -> dict[str, jax.Array]:
    """The rows :data:`ROWS` ``(B,)`` of a lanes' block."""
    return {name: lanes[i] for i, name in enumerate(ROWS)}


def decide(rule: Callable, lanes: dict[str, jax.Array], d: jax.Array, aa: jax.Array, dd: jax.Array,
           rr: jax.Array) -> dict[str, jax.Array]:  # fmt: skip
    """The decision on each lane's pending candidate: its rows :data:`ROWS` after the candidate's
    step, from the step's per-lane sums over the samples (``d = sum s (y - XW - b)``, ``aa``) and
    over the features (``dd = ||dW||**2``, ``rr = <Wy - Wn, Wn - W>``).  As
    :func:`jaxreg.solvers.fista`'s ``decide`` for squared loss with the intercept in closed form:
    the candidate's intercept is ``b + d`` and its excess over the quadratic model
    ``(aa - d**2) / 2``; ``rule`` is the sufficient-decrease test, step size and restart.  Pure
    ``jnp`` on rows of any one shape: in the gradient kernel on ``(1, tb)``, in XLA on ``(B,)``."""
    b, by, n_iter = lanes["b"], lanes["by"], lanes["n_iter"]
    active = (lanes["pending"] > 0.5) & (lanes["done"] < 0.5) & (n_iter < lanes["max_iter"])
    bn = b + d
    excess = 0.5 * (aa - d * d)
    finite = jnp.isfinite(excess) & jnp.isfinite(dd)
    restart_dot = rr + lanes["kappa"] * (by - bn) * (bn - b)
    accept, beta, t, L = rule(lanes["L"], lanes["t"], lanes["L0"], active, finite, excess, dd, 0.0,
                              restart_dot)  # fmt: skip
    one = jnp.ones_like(b)
    return dict(
        lanes,
        b=jnp.where(accept, bn, b),
        by=jnp.where(accept, bn + beta * (bn - b), by),
        t=t,
        L=L,
        n_iter=jnp.where(active, n_iter + 1.0, n_iter),
        overflow=jnp.where(active & ~finite, one, lanes["overflow"]),
        accept=jnp.where(accept, one, 0.0 * one),
        beta=beta,
    )


def _rows_total(ref: Any, step: int) -> jax.Array:
    """``(1, B)``: the sum of the rows of the block ``ref`` ``(m, B)``, ``step`` rows a load (``m`` a
    multiple of ``step``), in order."""
    pl = _pallas()
    B = ref.shape[1]

    def add(j: int, acc: jax.Array) -> jax.Array:
        return acc + jnp.sum(ref[pl.ds(pl.multiple_of(j * step, step), step), :], axis=0, keepdims=True)

    return jax.lax.fori_loop(0, ref.shape[0] // step, add, jnp.zeros((1, B), ref.dtype))


def _pick(flag: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``a`` in the lanes whose ``flag (1, B)`` is 1, ``b`` in the others, bit for bit.  Selected by
    integer masks: Triton cannot move a boolean (1 bit) tensor between layouts, as it does with the
    operands of a matrix product."""
    it = jnp.int64 if a.dtype == jnp.float64 else jnp.int32
    mask = jnp.broadcast_to(-flag.astype(it), a.shape)  # all bits set where flagged
    bits = lambda v: jax.lax.bitcast_convert_type(v, it)  # noqa: E731
    return jax.lax.bitcast_convert_type((bits(a) & mask) | (bits(b) & ~mask), a.dtype)


def _grad_prox_kernel(x_ref, img_ref, imgy_ref, xw_ref, s_ref, y_ref, w_ref, wy_ref, wp_ref, c_ref, l1_ref,
                      l2_ref, lanes_ref, sr_ref, aa_ref, dd_ref, rr_ref,
                      w_out, wy_out, wn_out, dd_out, rr_out, cw_out, lanes_out, *, positive: bool,
                      rule: Callable):  # fmt: skip
    """One tile of features: the decision on the last step's candidate (each program takes it; the
    first of each block of lanes writes it), its picks of ``W`` and ``Wy`` and of the image at the
    extrapolated point, ``G = s (Zy - y)``, then ``Wn = prox(Wy - (X.T G - c sum(G)) / L)`` and its
    per-lane sums."""
    pl = _pallas()
    n_p = x_ref.shape[0]
    tk, B = wy_ref.shape
    dtype = wy_ref.dtype
    lanes = {name: lanes_ref[pl.ds(i, 1), :] for i, name in enumerate(ROWS)}
    new = decide(rule, lanes, _rows_total(sr_ref, 1), _rows_total(aa_ref, 1), dd_ref[pl.ds(0, 1), :],
                 rr_ref[pl.ds(0, 1), :])  # fmt: skip
    accepted, beta, b = new["accept"], new["beta"], new["b"]

    def body(i: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        acc, gs = carry
        rows = pl.ds(pl.multiple_of(i * TN_LOOP, TN_LOOP), TN_LOOP)
        zn = xw_ref[rows, :] + b  # the candidate's image, picked as the XLA step's
        zy = _pick(accepted, zn + beta * (zn - img_ref[rows, :]), imgy_ref[rows, :])
        g = s_ref[rows, :] * (zy - y_ref[rows, :])  # f'(z) = z - y, weighted
        return acc + _dot_t(x_ref[rows, :], g), gs + jnp.sum(g, axis=0, keepdims=True)

    init = (jnp.zeros((tk, B), dtype), jnp.zeros((1, B), dtype))
    acc, gs = jax.lax.fori_loop(0, n_p // TN_LOOP, body, init)
    w_old, wp = w_ref[...], wp_ref[...]
    w = jnp.where(accepted > 0.5, wp, w_old)
    wy = jnp.where(accepted > 0.5, wp + beta * (wp - w_old), wy_ref[...])
    w_out[...] = w
    wy_out[...] = wy
    c = c_ref[...]
    step = 1.0 / new["L"]
    v = wy - step * (acc - c * gs)
    thr = step * l1_ref[...]
    shrunk = jnp.maximum(v - thr, 0.0) if positive else jnp.sign(v) * jnp.maximum(jnp.abs(v) - thr, 0.0)
    wn = shrunk / (1.0 + step * l2_ref[...])
    wn_out[...] = wn
    dw = wn - wy
    dd_out[...] = jnp.sum(dw * dw, axis=0, keepdims=True)
    rr_out[...] = jnp.sum((wy - wn) * (wn - w), axis=0, keepdims=True)
    cw_out[...] = jnp.sum(c * wn, axis=0, keepdims=True)
    new["pending"] = jnp.ones_like(b)  # this step's candidate

    @pl.when(pl.program_id(0) == 0)
    def _() -> None:
        for i, name in enumerate(ROWS):
            lanes_out[pl.ds(i, 1), :] = new[name]


def _image_kernel(x_ref, wn_ref, dd_ref, rr_ref, cw_ref, s_ref, y_ref, img_ref, imgy_ref, xwp_ref, lanes_ref,
                  xw_ref, img_out, imgy_out, sr_ref, aa_ref, dd_out, rr_out):  # fmt: skip
    """One tile of samples: the last step's picks of the images, ``X Wn - c.Wn`` and its per-lane sums
    for the intercept and the excess; and each program the totals of the gradient kernel's per-tile
    sums (the next gradient kernel reads the first's)."""
    pl = _pallas()
    k = x_ref.shape[1]
    tn, B = s_ref.shape
    dtype = wn_ref.dtype
    row = lambda name: lanes_ref[pl.ds(ROWS.index(name), 1), :]  # noqa: E731
    accepted, beta, b = row("accept") > 0.5, row("beta"), row("b")
    zn = xwp_ref[...] + b
    img = img_ref[...]
    zy = jnp.where(accepted, zn + beta * (zn - img), imgy_ref[...])
    img_out[...] = jnp.where(accepted, zn, img)
    imgy_out[...] = zy

    def body(j: int, acc: jax.Array) -> jax.Array:
        cols = pl.ds(pl.multiple_of(j * TK_LOOP, TK_LOOP), TK_LOOP)
        return acc + _dot(x_ref[:, cols], wn_ref[cols, :])

    xw = jax.lax.fori_loop(0, k // TK_LOOP, body, jnp.zeros((tn, B), dtype))
    xw = xw - _rows_total(cw_ref, 4)
    dd_out[...] = _rows_total(dd_ref, 4)
    rr_out[...] = _rows_total(rr_ref, 4)
    s, y = s_ref[...], y_ref[...]
    a = xw - (zy - b)
    xw_ref[...] = xw
    sr_ref[...] = jnp.sum(s * (y - xw - b), axis=0, keepdims=True)
    aa_ref[...] = jnp.sum(s * a * a, axis=0, keepdims=True)


def grad_prox(X: jax.Array, img: jax.Array, imgy: jax.Array, XWp: jax.Array, s: jax.Array, y: jax.Array,
              W: jax.Array, Wy: jax.Array, Wp: jax.Array, c: jax.Array, l1: jax.Array, l2: jax.Array,
              lanes: jax.Array, sums: tuple[jax.Array, ...], positive: bool, rule: Callable):  # fmt: skip
    """A step's first kernel: the decision on the last step's candidate and its picks, then this
    step's candidate.  Returns the picks ``W, Wy (k, B)``, the candidate ``Wn (k, B)``, the lanes'
    block after the decision (:func:`decide`), and the per-lane sums ``||dW||**2``,
    ``<Wy - Wn, Wn - W>``, ``c.Wn`` of each tile of features ``(k / TK, B)`` (:func:`image` adds
    them up).

    ``X (n, k)``; the images before the last step's picks ``img, imgy (n, B)`` and its candidate's
    ``X Wp - c.Wp`` ``XWp (n, B)``; the samples' weights ``s (n, B)`` and targets ``y (n, 1)``;
    ``W, Wy`` before the last step's picks and ``Wp`` its candidate; ``c, l1, l2 (k, B)`` the
    centers and the penalty's strengths; the lanes' block ``(LANE_ROWS, B)`` (:func:`pack`); and
    the last :func:`image`'s sums ``(d, aa, dd, rr)``.  ``n`` a multiple of :data:`TN_LOOP`, ``k``
    of ``4 TK``.
    """
    pl = _pallas()
    n, k = X.shape
    B = Wy.shape[1]
    tb = min(B, TB)
    nt = k // TK
    tile = pl.BlockSpec((TK, tb), lambda j, l: (j, l))
    part = jax.ShapeDtypeStruct((nt, B), Wy.dtype)
    row = pl.BlockSpec((1, tb), lambda j, l: (j, l))
    cols = lambda m: pl.BlockSpec((m, tb), lambda j, l: (0, l))  # noqa: E731
    arr = jax.ShapeDtypeStruct((k, B), Wy.dtype)
    W, Wy, Wn, dd, rr, cw, lanes = pl.pallas_call(
        functools.partial(_grad_prox_kernel, positive=positive, rule=rule),
        out_shape=(arr, arr, arr, part, part, part, jax.ShapeDtypeStruct(lanes.shape, lanes.dtype)),
        grid=(nt, B // tb),
        in_specs=[pl.BlockSpec((n, TK), lambda j, l: (0, j)), cols(n), cols(n), cols(n), cols(n),
                  pl.BlockSpec((n, 1), lambda j, l: (0, 0)), tile, tile, tile, tile, tile, tile,
                  cols(LANE_ROWS)] + [cols(a.shape[0]) for a in sums],  # fmt: skip
        out_specs=(tile, tile, tile, row, row, row, cols(LANE_ROWS)),
        compiler_params=_compiler_params(),
        interpret=_interpret(),
        name="jaxreg_grad_prox",
    )(X, img, imgy, XWp, s, y, W, Wy, Wp, c, l1, l2, lanes, *sums)
    return W, Wy, Wn, lanes, (dd, rr, cw)


def image(X: jax.Array, Wn: jax.Array, parts: tuple[jax.Array, jax.Array, jax.Array], s: jax.Array,
          y: jax.Array, img: jax.Array, imgy: jax.Array, XWp: jax.Array, lanes: jax.Array):  # fmt: skip
    """A step's second kernel: the last step's picks of the images ``img, imgy (n, B)`` (by the
    decision in ``lanes``, :func:`grad_prox`'s), the candidate's ``XW = X Wn - c.Wn (n, B)``, and
    the step's sums for the next decision ``(d, aa, dd, rr)``: per tile of samples ``(n / TN, B)``
    ``sum s (y - XW - b)`` and ``sum s (XW - Zy + b)**2``, and in each row the totals of the
    gradient kernel's per-tile sums ``parts`` (``||dW||**2``, ``<Wy - Wn, Wn - W>``, ``c.Wn``, of
    which it subtracts the last).  Returns ``XW``, the picked images and the sums."""
    pl = _pallas()
    n, k = X.shape
    B = Wn.shape[1]
    tb = min(B, TB)
    nt = n // TN
    tile = pl.BlockSpec((TN, tb), lambda i, l: (i, l))
    part = jax.ShapeDtypeStruct((nt, B), Wn.dtype)
    arr = jax.ShapeDtypeStruct((n, B), Wn.dtype)
    row = pl.BlockSpec((1, tb), lambda i, l: (i, l))
    cols = lambda m: pl.BlockSpec((m, tb), lambda i, l: (0, l))  # noqa: E731
    dd, rr, cw = parts
    xw, img, imgy, *sums = pl.pallas_call(
        _image_kernel,
        out_shape=(arr, arr, arr, part, part, part, part),
        grid=(nt, B // tb),
        in_specs=[pl.BlockSpec((TN, k), lambda i, l: (i, 0)), cols(k), cols(dd.shape[0]), cols(rr.shape[0]),
                  cols(cw.shape[0]), tile, pl.BlockSpec((TN, 1), lambda i, l: (i, 0)), tile, tile, tile,
                  cols(LANE_ROWS)],  # fmt: skip
        out_specs=(tile, tile, tile, row, row, row, row),
        compiler_params=_compiler_params(),
        interpret=_interpret(),
        name="jaxreg_image",
    )(X, Wn, dd, rr, cw, s, y, img, imgy, XWp, lanes)
    return xw, img, imgy, tuple(sums)


def settle(rule: Callable, lanes: jax.Array, sums: tuple[jax.Array, ...]) -> dict[str, jax.Array]:
    """In XLA, the decision on the last step's candidate (:func:`decide`, its sums added in the
    kernels' order): the rows :data:`ROWS` ``(B,)``."""
    d, aa, dd, rr = sums
    total = lambda a: functools.reduce(lambda acc, r: acc + r, a, jnp.zeros_like(a[0]))  # noqa: E731
    return decide(rule, unpack(lanes), total(d), total(aa), dd[0], rr[0])
