"""FISTA steps of a lasso or elastic net on a centered design in two Pallas (Triton) kernels a step.

XLA compiles a batched step of :func:`jaxreg.solvers.fista` (squared loss, intercept in closed form,
centered columns, several lanes) into about ten kernels on a GPU: the two matrix products, the
gradient's centering, the prox, two stacked reductions (the step's inner products over the features,
the intercept and the excess over the samples) and the elementwise updates.  On an H200 they kept
the device busy 51 us a batched iteration of the wide path, most of it in the reductions
(``benchmarks/README.md``); the products themselves read ``X`` in a few us.  Here one kernel takes
the gradient, the prox and the per-lane sums over the features of a tile of features, the next the
image and the per-lane sums over the samples of a tile of samples; XLA adds the few lanes' sums
of the tiles and the elementwise updates (:func:`jaxreg.solvers.fista`'s ``decide``, shared with
its own step).

Opt-in (``jaxreg.solvers.FUSED``), until a GPU has timed it against XLA's step.  Triton works on
power-of-two tiles: the samples are padded with rows of zero weight to a multiple of :data:`TN`
and the lanes to a power of two (at least 16) with copies of the first lane that are done from
the start (:func:`pad`), once per solve.  On a CPU the kernels run in Pallas' interpreter (tests).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

#: features per program of the gradient kernel; samples per chunk of its loop (powers of two, read
#: when a solver is traced; untuned: ``benchmarks/gpu.sh OUT fused`` times others)
TK, TN_LOOP = 32, 32
#: lanes per program of both kernels (fewer: more programs).  Untimed: at the wide path's largest
#: working set (1024 features, 512 padded samples, 32 padded lanes) the image kernel runs 16 programs
#: of 1M multiply-adds, about 4 us at an H100 SM's float64 tensor-core peak (0.5 TFLOP/s); 16 lanes
#: halve that with twice the programs, and the same 9 kernels a turn (``gpu.sh OUT fused`` times both)
TB = 32
#: samples per program of the image kernel; features per chunk of its loop.  Compiled for an H100,
#: the wide path's 512 padded samples in 16 programs let XLA add their per-lane sums up in the
#: kernel of the step's decision (9 kernels a turn of two steps); in 32 (TN 16), in kernels of their
#: own (13)
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


def _grad_prox_kernel(x_ref, g_ref, w_ref, wy_ref, wp_ref, c_ref, l1_ref, l2_ref, acc_ref, beta_ref, L_ref,
                      w_out, wy_out, wn_out, dd_ref, rr_ref, cw_ref, *, positive: bool):  # fmt: skip
    """One tile of features: the last step's picks of ``W`` and ``Wy``, then
    ``Wn = prox(Wy - (X.T G - c sum(G)) / L)`` and its per-lane sums."""
    pl = _pallas()
    n_p = x_ref.shape[0]
    tk, B = wy_ref.shape
    dtype = wy_ref.dtype

    def body(i: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        acc, gs = carry
        rows = pl.ds(pl.multiple_of(i * TN_LOOP, TN_LOOP), TN_LOOP)
        g = g_ref[rows, :]
        return acc + _dot_t(x_ref[rows, :], g), gs + jnp.sum(g, axis=0, keepdims=True)

    init = (jnp.zeros((tk, B), dtype), jnp.zeros((1, B), dtype))
    acc, gs = jax.lax.fori_loop(0, n_p // TN_LOOP, body, init)
    # the last step's candidate where it was accepted, with FISTA's extrapolation (as the XLA step)
    accepted, beta, L = acc_ref[...] > 0.5, beta_ref[...], L_ref[...]
    w_old, wp = w_ref[...], wp_ref[...]
    w = jnp.where(accepted, wp, w_old)
    wy = jnp.where(accepted, wp + beta * (wp - w_old), wy_ref[...])
    w_out[...] = w
    wy_out[...] = wy
    c = c_ref[...]
    step = 1.0 / L
    v = wy - step * (acc - c * gs)
    thr = step * l1_ref[...]
    shrunk = jnp.maximum(v - thr, 0.0) if positive else jnp.sign(v) * jnp.maximum(jnp.abs(v) - thr, 0.0)
    wn = shrunk / (1.0 + step * l2_ref[...])
    wn_out[...] = wn
    dw = wn - wy
    dd_ref[...] = jnp.sum(dw * dw, axis=0, keepdims=True)
    rr_ref[...] = jnp.sum((wy - wn) * (wn - w), axis=0, keepdims=True)
    cw_ref[...] = jnp.sum(c * wn, axis=0, keepdims=True)


def _image_kernel(x_ref, wn_ref, dd_ref, rr_ref, cw_ref, s_ref, y_ref, zy_ref, shift_ref,
                  xw_ref, sr_ref, aa_ref, dd_out, rr_out):  # fmt: skip
    """One tile of samples: ``X Wn - c.Wn`` and its per-lane sums for the intercept and the excess;
    and each program the totals of the gradient kernel's per-tile sums (XLA reads the first's)."""
    pl = _pallas()
    tn = x_ref.shape[0]
    k = x_ref.shape[1]
    B = wn_ref.shape[1]
    dtype = wn_ref.dtype

    def body(j: int, acc: jax.Array) -> jax.Array:
        cols = pl.ds(pl.multiple_of(j * TK_LOOP, TK_LOOP), TK_LOOP)
        return acc + _dot(x_ref[:, cols], wn_ref[cols, :])

    xw = jax.lax.fori_loop(0, k // TK_LOOP, body, jnp.zeros((tn, B), dtype))
    def total(ref: Any) -> jax.Array:  # (nt, B) -> (1, B), nt a multiple of 4
        def add(j: int, acc: jax.Array) -> jax.Array:
            return acc + jnp.sum(ref[pl.ds(pl.multiple_of(j * 4, 4), 4), :], axis=0, keepdims=True)

        return jax.lax.fori_loop(0, ref.shape[0] // 4, add, jnp.zeros((1, B), dtype))

    xw = xw - total(cw_ref)
    dd_out[...] = total(dd_ref)
    rr_out[...] = total(rr_ref)
    s, y, shift = s_ref[...], y_ref[...], shift_ref[...]
    a = xw - (zy_ref[...] - shift)
    xw_ref[...] = xw
    sr_ref[...] = jnp.sum(s * (y - xw - shift), axis=0, keepdims=True)
    aa_ref[...] = jnp.sum(s * a * a, axis=0, keepdims=True)


def grad_prox(X: jax.Array, G: jax.Array, W: jax.Array, Wy: jax.Array, Wp: jax.Array, c: jax.Array,
              l1: jax.Array, l2: jax.Array, accepted: jax.Array, beta: jax.Array, L: jax.Array,
              positive: bool):  # fmt: skip
    """The last step's picks ``W, Wy (k, B)``, the step's candidate ``Wn (k, B)``, and the per-lane
    sums ``||dW||**2``, ``<Wy - Wn, Wn - W>``, ``c.Wn`` of each tile of features ``(k / TK, B)``
    (:func:`image` adds them up).

    ``X (n, k)``; ``G = s f'(z) (n, B)`` at the step's extrapolated point; ``W, Wy`` before the last
    step's picks and ``Wp`` its candidate; ``c, l1, l2 (k, B)`` the centers and the penalty's
    strengths; ``(B,)``: whether each lane accepted the last step's candidate, its extrapolation
    ``beta``, and this step's ``L``.  ``n`` a multiple of :data:`TN_LOOP`, ``k`` of ``4 TK``.
    """
    pl = _pallas()
    n, k = X.shape
    B = Wy.shape[1]
    tb = min(B, TB)
    nt = k // TK
    tile = pl.BlockSpec((TK, tb), lambda j, l: (j, l))
    part = jax.ShapeDtypeStruct((nt, B), Wy.dtype)
    row = pl.BlockSpec((1, tb), lambda j, l: (j, l))
    lanes = pl.BlockSpec((1, tb), lambda j, l: (0, l))
    arr = jax.ShapeDtypeStruct((k, B), Wy.dtype)
    return pl.pallas_call(
        functools.partial(_grad_prox_kernel, positive=positive),
        out_shape=(arr, arr, arr, part, part, part),
        grid=(nt, B // tb),
        in_specs=[pl.BlockSpec((n, TK), lambda j, l: (0, j)), pl.BlockSpec((n, tb), lambda j, l: (0, l)),
                  tile, tile, tile, tile, tile, tile, lanes, lanes, lanes],
        out_specs=(tile, tile, tile, row, row, row),
        compiler_params=_compiler_params(),
        interpret=_interpret(),
        name="jaxreg_grad_prox",
    )(X, G, W, Wy, Wp, c, l1, l2, accepted.astype(W.dtype)[None], beta[None], L[None])


def image(X: jax.Array, Wn: jax.Array, parts: tuple[jax.Array, jax.Array, jax.Array], s: jax.Array,
          y: jax.Array, Zy: jax.Array, shift: jax.Array):  # fmt: skip
    """``XW = X Wn - c.Wn (n, B)``, the per-lane sums ``sum s (y - XW - shift)`` and
    ``sum s (XW - Zy + shift)**2``, and the totals ``(B,)`` of the gradient kernel's per-tile sums
    ``parts`` (``||dW||**2``, ``<Wy - Wn, Wn - W>``, ``c.Wn``) of which it subtracts the last."""
    pl = _pallas()
    n, k = X.shape
    B = Wn.shape[1]
    tb = min(B, TB)
    nt = n // TN
    tile = pl.BlockSpec((TN, tb), lambda i, l: (i, l))
    part = jax.ShapeDtypeStruct((nt, B), Wn.dtype)
    row = pl.BlockSpec((1, tb), lambda i, l: (i, l))
    cols = lambda m: pl.BlockSpec((m, tb), lambda i, l: (0, l))  # noqa: E731
    dd, rr, cw = parts
    xw, sr, aa, dd, rr = pl.pallas_call(
        _image_kernel,
        out_shape=(jax.ShapeDtypeStruct((n, B), Wn.dtype), part, part, part, part),
        grid=(nt, B // tb),
        in_specs=[pl.BlockSpec((TN, k), lambda i, l: (i, 0)), cols(k), cols(dd.shape[0]), cols(rr.shape[0]),
                  cols(cw.shape[0]), tile, pl.BlockSpec((TN, 1), lambda i, l: (i, 0)), tile, cols(1)],
        out_specs=(tile, row, row, row, row),
        compiler_params=_compiler_params(),
        interpret=_interpret(),
        name="jaxreg_image",
    )(X, Wn, dd, rr, cw, s, y, Zy, shift[None, :])
    return xw, jnp.sum(sr, axis=0), jnp.sum(aa, axis=0), dd[0], rr[0]
