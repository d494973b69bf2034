"""Lanes recycled down the path against warm-started blocks: batched iterations on an accelerator.

On a GPU a path's time is about its number of batched FISTA iterations (each launches the same
kernels whatever the number of lanes) times the cost of one.  ``jr.path`` solves blocks of
``block_size`` alphas, each block warm-started from the last solution of the block before, and a
block runs until its slowest lane converges: on the wide benchmark with blocks of 20 the last lane of
a block took 270 to 330 iterations, its first 0 to 40.

This script measures an alternative, on this machine: ``B`` lanes in flight, solved in rounds of at
most ``R`` iterations by the same solver (``jaxreg.solvers.run``); after each round a converged lane
stores its solution and takes the next alpha of the grid, starting from the current iterate of the
deepest lane still in flight.  It counts the batched iterations (per round, or per block: the most
iterations of a lane) of both schemes, and checks every solution's duality gap in NumPy.  The loop
structure of accelerators (one check before the loop, none conditional) is forced on the CPU by
reporting the backend as ``gpu`` to jaxreg; the rounds are driven from Python, so times mean nothing.

    python benchmarks/recycling.py wide --settings 20:60 20:80 20:100 25:80
    python benchmarks/recycling.py logistic --settings 20:80
    python benchmarks/recycling.py small --tol 1e-8 --settings 5:80 5:80:double

A setting is ``B:R``, or ``B:R:double`` for rounds that double in length while a lane stays on the
same alpha (``R * 2**k`` after ``k`` rounds of the lane in flight longest).  ``small`` is a 40 x 120
design of the same kind, with 23 alphas.  Prints one line per scheme: batched iterations,
iterations summed over lanes, rounds (or blocks), and the worst NumPy gap over ``tol``.

Measured (``benchmarks/README.md``): at ``tol=1e-4`` with 20 lanes, rounds of 80 took wide from 890
batched iterations (blocks of 20) to 550, L1-logistic from 660 to 380, square from 500 to 430; but
a lane that needs many rounds restarts FISTA at each: at ``tol=1e-8`` on ``small``, rounds of 12 left
a lane at ``max_iter`` and rounds of 80 took 4340 batched iterations against 2250 for blocks of 5.
Only doubling rounds of 40 did no worse than blocks on all four; jaxreg keeps warm-started blocks.
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

import jaxreg as jr

S = sys.modules["jaxreg.solvers"]
PM = sys.modules["jaxreg.path"]
TOL = 1e-4  # --tol
MAX_ITER = 10_000


def make(name: str) -> problems.Problem:
    if name == "small":
        X = problems.toeplitz_design(40, 120, seed=3)
        return problems.Problem("small", X, problems.sparse_response(X, density=0.05, seed=3), "lasso")
    return problems.make(name)


def grid_of(prob: problems.Problem) -> np.ndarray:
    if prob.name == "small":
        return np.asarray(jr.path(prob.X, prob.y, alphas=23, max_iter=1).alphas)
    if prob.kind == "logistic":
        amax = float(jr.alpha_max(prob.X, prob.y, jr.LogisticLoss()))
        return amax * np.logspace(0, -3, 50)
    return np.asarray(jr.path(prob.X, prob.y, max_iter=1).alphas)


def worst_gap(prob: problems.Problem, grid: np.ndarray, coefs: np.ndarray, intercepts: np.ndarray) -> float:
    gap = problems.logistic_gap if prob.kind == "logistic" else problems.lasso_gap
    scale = problems.tol_scale(prob.y, prob.kind)
    return max(gap(prob.X, prob.y, coefs[i], float(intercepts[i]), grid[i]) for i in range(grid.size)) / (TOL * scale)


def blocks(prob: problems.Problem, grid: np.ndarray, B: int) -> str:
    loss = jr.LogisticLoss() if prob.kind == "logistic" else jr.SquaredLoss()
    res = jr.path(prob.X, prob.y, loss, alphas=grid, tol=TOL, block_size=B)
    ni = np.asarray(res.n_iter)
    pad = -ni.size % B
    per_block = np.concatenate([ni, np.zeros(pad, ni.dtype)]).reshape(-1, B).max(axis=1)
    g = worst_gap(prob, grid, np.asarray(res.coef), np.asarray(res.intercept))
    return (f"blocks of {B}: batched {per_block.sum()}, summed over lanes {ni.sum()}, blocks {per_block.size}, "
            f"worst gap / tol {g:.3f}")


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
    ap.add_argument("problem", choices=["wide", "square", "logistic", "small"])
    ap.add_argument("--settings", nargs="+", default=["20:60", "20:80", "20:100"], help="B:R[:double]")
    ap.add_argument("--tol", type=float, default=TOL)
    args = ap.parse_args()
    TOL = args.tol
    prob = make(args.problem)
    grid = grid_of(prob)
    for B in dict.fromkeys(int(st.split(":")[0]) for st in args.settings):
        print(blocks(prob, grid, B), flush=True)
    for st in args.settings:
        B, R, *rest = st.split(":")
        try:
            print(recycled(prob, grid, int(B), int(R), rest == ["double"]), flush=True)
        except RuntimeError as e:
            print(f"recycled {st}: {e}", flush=True)


if __name__ == "__main__":
    main()
