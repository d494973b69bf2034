"""Lanes recycled down the path against warm-started blocks: batched iterations on an accelerator.

On a GPU a path's time is about its number of batched FISTA iterations (each launches the same
kernels whatever the number of lanes) times the cost of one.  In blocks of ``B`` alphas, each block
warm-started from the last solution of the block before, a block runs until its slowest lane
converges: on the wide benchmark with blocks of 20 the last lane of a block took 140 to 210
iterations, its first 0 to 30.  ``jr.path`` recycles the lanes instead when there are at least
``jaxreg.path._RECYCLE_LANES`` of them (on the design; ``jaxreg.path._recycled``): rounds of at
most 40, 80, 160 ... iterations, after each of which a lane that finished its alpha takes the next
one, starting from the current iterate of the deepest lane still in flight.

For each problem this script prints the batched iterations (per block or round, the most iterations
of a lane, summed) of ``jr.path`` in blocks of ``B`` (recycling switched off), of ``jr.path``
recycling ``B`` lanes (each counted by ``batched.counting_solves``), and of the variants given by
``--settings``, driven round by round from Python with the same solver (``jaxreg.solvers.run``).
Every solution's duality gap is checked in NumPy.  The loop structure of accelerators (one check
before the loop, none conditional) is forced on the CPU by reporting the backend as ``gpu`` to
jaxreg, so times mean nothing.

    python benchmarks/recycling.py wide logistic square --lanes 20
    python benchmarks/recycling.py 50x200:0 100x1000:1 200x2000:2 --lanes 20 10 --tol 1e-6
    python benchmarks/recycling.py small:0 small:3 --lanes 5 --tol 1e-8 --settings 5:80 5:40:double

Problems: ``wide``, ``square``, ``logistic`` (``problems.py``); ``cv``, the 5-fold CV of wide with
its full path, six paths as lanes of one solve (``threads=1``, as on accelerators); ``NxP:SEED``, a Toeplitz design of
that shape with 2% nonzero true coefficients and 100 alphas; ``small:SEED``, a 40 x 120 design with
5% and 23 alphas.  A setting is ``B:R``, or ``B:R:double`` for rounds that double in length while
a lane stays on the same alpha (``R * 2**k`` after ``k`` rounds of the lane in flight longest), which
``jr.path`` does with ``R`` 40.

Measured (``benchmarks/README.md``): with 20 lanes recycling took 0.39 to 0.94 times the blocks'
batched iterations on every problem (wide 440 against 560, L1-logistic 290 against 430, 18 designs
of 50 x 200 to 200 x 2000 at ``tol`` 1e-4 and 1e-6); with 10 lanes 0.40 to 1.11 times; with 5
lanes at ``tol=1e-8`` up to 1.74 times.  On the Gram matrix (square) 410 against 370: blocks stay.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
jax.default_backend = lambda: "gpu"  # jaxreg reads it to choose the accelerators' loop structure

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import problems
from batched import counting_solves

import jaxreg as jr

S = sys.modules["jaxreg.solvers"]
PM = sys.modules["jaxreg.path"]
TOL = 1e-4  # --tol
MAX_ITER = 10_000


def make(name: str) -> problems.Problem:
    if name == "cv":
        wide = problems.make("wide")
        return problems.Problem("cv5-wide", wide.X, wide.y, "lasso")
    kind, _, seed = name.partition(":")
    if kind != "small" and "x" not in kind:
        return problems.make(name)
    (n, p), density, seed = ((40, 120), 0.05, int(seed or 3)) if kind == "small" else \
        (map(int, kind.split("x")), 0.02, int(seed or 0))
    X = problems.toeplitz_design(n, p, seed=seed)
    return problems.Problem(name, X, problems.sparse_response(X, density=density, seed=seed), "lasso")


def grid_of(prob: problems.Problem) -> np.ndarray:
    if prob.kind == "logistic":
        amax = float(jr.alpha_max(prob.X, prob.y, jr.LogisticLoss()))
        return amax * np.logspace(0, -3, 50)
    n_alphas = 23 if prob.name.startswith("small") else 100
    return np.asarray(jr.path(prob.X, prob.y, alphas=n_alphas, max_iter=1).alphas)


def worst_gap(prob: problems.Problem, grid: np.ndarray, coefs: np.ndarray, intercepts: np.ndarray) -> float:
    gap = problems.logistic_gap if prob.kind == "logistic" else problems.lasso_gap
    scale = problems.tol_scale(prob.y, prob.kind)
    return max(gap(prob.X, prob.y, coefs[i], float(intercepts[i]), grid[i]) for i in range(grid.size)) / (TOL * scale)


def in_library(prob: problems.Problem, grid: np.ndarray, B: int, recycle: bool) -> tuple[int, str]:
    """``jr.path`` (``cv5-wide``: ``jr.cross_validate``, 5 folds) with ``B`` lanes, recycled or in
    blocks: (batched iterations, a line to print)."""
    loss = jr.LogisticLoss() if prob.kind == "logistic" else jr.SquaredLoss()
    kw = {"tol": TOL, "block_size": B, "max_iter": MAX_ITER + 1 + recycle}  # a program of its own per scheme
    recycles = PM._recycles
    PM._recycles = recycles if recycle else lambda *args: False
    try:
        with counting_solves() as counts:
            if prob.name == "cv5-wide":
                cv = jr.cross_validate(prob.X, prob.y, alphas=grid, cv=5, threads=1, **kw)
                res = cv.path
            else:
                res = jr.path(prob.X, prob.y, loss, alphas=grid, **kw)
            jax.effects_barrier()
    finally:
        PM._recycles = recycles
    ni = np.asarray(res.n_iter)
    gram = S.uses_gram(loss, "grad" if prob.kind == "logistic" else "closed", *prob.X.shape)
    is_recycled = recycle and recycles(PM._PathCfg(None, B, True), gram, grid.size)
    what = f"jr.path recycling {B} lanes: rounds" if is_recycled else f"blocks of {B}: blocks"
    g = worst_gap(prob, grid, np.asarray(res.coef), np.asarray(res.intercept))
    line = (f"{what} {len(counts)}, batched {sum(counts)}, summed over lanes {ni.sum()}, "
            f"worst gap / tol {g:.3f}")
    if prob.name == "cv5-wide":  # the folds' solutions are not returned: their own certificates
        line += f" (full path; folds converged: {bool(np.all(np.asarray(cv.fold_converged)))})"
    return sum(counts), line


def recycled(prob: problems.Problem, grid: np.ndarray, B: int, R: int, double: bool = False) -> str:
    X, y = jnp.asarray(prob.X), jnp.asarray(prob.y)
    n, p = X.shape
    loss = jr.LogisticLoss() if prob.kind == "logistic" else jr.SquaredLoss()
    mode = S._intercept_mode(loss, True)
    A = grid.size
    s1 = jnp.full((n, 1), 1.0 / n, X.dtype)
    gram = S._gram_model(X, y, s1, mode, B) if S.uses_gram(loss, mode, n, p) else None
    su1 = S.setup(X, y, s1, loss, mode, None if gram is None else S._Gram(gram[0].G, gram[0].q[:, :1], gram[0].yy[:1]))
    s_l = jnp.repeat(s1, B, axis=1)
    su_l = jax.tree_util.tree_map(lambda a: jnp.repeat(a, B, axis=0), su1)
    unit, _ = PM._unit_lanes(jr.L1(), p, X.dtype)
    base = jax.tree_util.tree_map(lambda a: jnp.repeat(a, B, axis=0), unit)
    means = S.rmatmul(X, s1) if gram is None else None
    tol = jnp.asarray(TOL, X.dtype)

    @functools.partial(jax.jit, static_argnames="cap")
    def solve_round(W0, b0, alphas, cap):
        pen = dataclasses.replace(base, alpha=alphas)
        cfg = S._Config(mode, cap, 10, S.capacities(jr.L1(), n, p))
        st = S.run(X, y, s_l, loss, pen, W0, b0, su_l, tol, cfg, groups=1, gram=gram, means=means)
        return st.W, st.b, st.n_iter, st.status

    W = np.zeros((p, B, 1))
    b = np.broadcast_to(np.asarray(su1.b_null), (B, 1)).copy()
    lane = np.arange(B)  # the alpha each lane solves (A and beyond: idle)
    age = np.zeros(B, int)  # rounds each lane has spent on its alpha
    spent = np.zeros(B, int)  # iterations each lane has spent on its alpha
    nxt, rounds, batched, summed = B, 0, 0, 0
    coefs, intercepts = np.zeros((A, p)), np.zeros(A)
    solved = np.zeros(A, bool)
    while not solved.all():
        active = lane < A
        cap = R * 2 ** int(age[active].max()) if double else R
        cap = int(min(cap, MAX_ITER - spent[active].min()))
        a = jnp.asarray(grid[np.minimum(lane, A - 1)])
        Wj, bj, ni, status = solve_round(jnp.asarray(W), jnp.asarray(b), a, cap)
        W, b, ni, status = np.array(Wj), np.array(bj), np.asarray(ni), np.asarray(status)
        rounds += 1
        batched += int(ni[active].max())
        summed += int(ni[active].sum())
        spent += ni
        out = active & (spent >= MAX_ITER)
        if out.any():
            raise RuntimeError(f"lanes of alphas {lane[out].tolist()} ran out of max_iter={MAX_ITER}")
        conv = active & (status == S.Status.CONVERGED)
        if np.any(active & ~conv & (status != S.Status.MAX_ITER)):
            raise RuntimeError(f"a lane ended with status {status[active & ~conv]}")
        age = np.where(conv, 0, age + 1)
        spent = np.where(conv, 0, spent)
        coefs[lane[conv]], intercepts[lane[conv]], solved[lane[conv]] = W[:, conv, 0].T, b[conv, 0], True
        flying = np.flatnonzero(active & ~conv)
        for q in np.flatnonzero(conv):
            src = flying[np.argmax(lane[flying])] if flying.size else np.flatnonzero(conv)[np.argmax(lane[conv])]
            W[:, q], b[q], lane[q], nxt = W[:, src], b[src], nxt, nxt + 1
    g = worst_gap(prob, grid, coefs, intercepts)
    return (f"recycled B {B}, R {R}{' doubling' if double else ''}: batched {batched}, summed over lanes {summed}, rounds {rounds}, "
            f"worst gap / tol {g:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    global TOL
    ap.add_argument("problems", nargs="+", help="wide, square, logistic, cv, NxP:SEED or small:SEED")
    ap.add_argument("--lanes", nargs="+", type=int, default=[20], help="B of blocks and recycled paths")
    ap.add_argument("--settings", nargs="*", default=[], help="B:R[:double], driven from Python")
    ap.add_argument("--tol", type=float, default=TOL)
    args = ap.parse_args()
    TOL = args.tol
    for name in args.problems:
        prob = make(name)
        grid = grid_of(prob)
        for B in args.lanes:
            n_blocks, line = in_library(prob, grid, B, False)
            print(f"{name} tol {TOL:g}: {line}", flush=True)
            n_rec, line = in_library(prob, grid, B, True)
            print(f"{name} tol {TOL:g}: {line}; {n_rec / max(n_blocks, 1):.2f} times the blocks'", flush=True)
        for st in args.settings if prob.name != "cv5-wide" else ():  # the variants drive single paths
            B, R, *rest = st.split(":")
            try:
                line = recycled(prob, grid, int(B), int(R), rest == ["double"])
                print(f"{name} tol {TOL:g}: {line}", flush=True)
            except RuntimeError as e:
                print(f"{name} tol {TOL:g}: recycled {st}: {e}", flush=True)


if __name__ == "__main__":
    main()
