"""Time of one batched solver iteration against the hardware bound of the device.

One iteration of the batched FISTA solver (``jaxreg.solvers.fista``) on the full design reads ``X`` twice (``X @ W`` and ``X.T @ G``) and does ``4 n p B`` flops for ``B``
lanes.  Its bound is the larger of ``2 * bytes(X) / bandwidth`` and ``4 n p B / matmul rate``, both
measured here on the device (a large copy; a large matrix product in the same dtype).  The iteration
time is the difference between two solves that run ``N1`` and ``N2`` iterations, over ``N2 - N1``.

    python benchmarks/iteration.py                  # wide and square, B = 1, 10, 100, float32/64
    python benchmarks/iteration.py --out results    # also writes iteration.md there
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import problems as P  # noqa: E402

import jaxreg as jr  # noqa: E402
from jaxreg import solvers as S  # noqa: E402


def best_of(fn, repeat=5):
    jax.block_until_ready(fn())
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def bandwidth(dtype) -> float:
    """Bytes per second of a large element-wise pass (bytes read plus bytes written)."""
    x = jnp.ones((1 << 26,), dtype)
    f = jax.jit(lambda a: a * 1.0001 + 1.0)
    return 2 * x.nbytes / best_of(lambda: f(x))


def matmul_rate(dtype, size: int = 4096) -> float:
    """Flops per second of a large matrix product at full precision (no TF32), as the solver runs."""
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
    f = jax.jit(lambda u, v: jnp.matmul(u, v, precision="highest"))
    return 2 * size**3 / best_of(lambda: f(a, a))


def _fista_impl(X, y, n_iter, n_lanes: int, check_every: int = 50, unroll: bool = False, fused: bool = False):
    """Batched FISTA of the solver on the full design, run for exactly ``n_iter`` iterations."""
    n, p = X.shape
    B = n_lanes
    s = jnp.full((n, B), 1.0 / n, X.dtype)
    pen = jr.L1(alpha=jnp.logspace(-4, -2, B, dtype=X.dtype))
    if jax.default_backend() != "cpu":  # zero columns up to an aligned width, as the solver's
        p = S._aligned(p, pen.broadcast((B,), p, X.dtype))
        X = jnp.pad(X, ((0, 0), (0, p - X.shape[1])))
    model = S._Design(X, y, s, jr.SquaredLoss(), "closed")
    L0 = 1.05 * S.lipschitz(X, s[:, :1], "closed") * jnp.ones(B, X.dtype)
    cfg = S._Config("closed", 1 << 30, check_every, unroll=unroll, fused=fused)
    st = S.fista(model, pen, jnp.zeros((p, B, 1), X.dtype), jnp.zeros((B, 1), X.dtype), L0,
                 jnp.zeros(B, X.dtype), jnp.full(B, n_iter), (jnp.ones((p, B), X.dtype), jnp.ones(B, X.dtype)), cfg)
    return st.W, st.n_iter


_STATIC = ("n_lanes", "check_every", "unroll", "fused")
#: the solver's loop with XLA's default command buffers (as jaxreg compiles it), and on a GPU with
#: the while loop as a CUDA graph with conditional nodes (problems.GPU_COMMAND_BUFFERS)
_FISTA = {
    False: jax.jit(_fista_impl, static_argnames=_STATIC),
    True: jax.jit(_fista_impl, static_argnames=_STATIC,
                  compiler_options={"xla_gpu_enable_command_buffer": P.GPU_COMMAND_BUFFERS}),
}


def iteration_time(X, y, B: int, n1: int = 100, n2: int = 600, check_every: int = 50, unroll: bool = False,
                   graphs: bool = False, fused: bool = False) -> float:
    """Seconds per iteration: the difference of a run of ``n2`` and of ``n1`` iterations (one compile)."""
    t = {}
    run = lambda m: _FISTA[graphs](X, y, m, B, check_every, unroll, fused)  # noqa: E731
    for m in (n1, n2):
        t[m] = best_of(lambda: run(m), 3)
    assert int(run(n2)[1][0]) == n2
    return (t[n2] - t[n1]) / (n2 - n1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="wide,square")
    ap.add_argument("--lanes", default="1,10,100")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--out", default=None)
    ap.add_argument("--check-every", type=int, default=50, help="FISTA steps between two gap checks")
    ap.add_argument("--unroll", default="0", help="0, 1 or 0,1: the steps between checks unrolled (one row each)")
    ap.add_argument("--graphs", default="0", help="0, 1 or 0,1: XLA's default command buffers, as jaxreg compiles "
                    "(0), or on a GPU the while loop as a CUDA graph (1); one row each")
    ap.add_argument("--fused", default="0",
                    help="0, 1 or 0,1: FISTA's steps by XLA (0) or by jaxreg._fused's kernels (1: on a GPU, "
                         "with 2 lanes or more); one row each")
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    lines = [
        f"# Solver iteration against the hardware bound ({dev.platform}: {dev.device_kind}, jax {jax.__version__})",
        "",
        f"FISTA with a gap check every {args.check_every} steps.",
        "",
        "| problem | dtype | lanes B | unrolled | loop as graph | fused | iteration (us) | bound (us) "
        "| iteration / bound | bandwidth (GB/s) | matmul (TFLOP/s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dt in args.dtypes.split(","):
        dtype = jnp.dtype(dt)
        bw, rate = bandwidth(dtype), matmul_rate(dtype)
        for name in args.problems.split(","):
            prob = P.make(name)
            X, y = jnp.asarray(prob.X, dtype), jnp.asarray(prob.y, dtype)
            n, p = X.shape
            for B in (int(b) for b in args.lanes.split(",")):
                for unroll in (bool(int(u)) for u in args.unroll.split(",")):
                    for graphs, fused in ((bool(int(g)), bool(int(f))) for g in args.graphs.split(",")
                                          for f in args.fused.split(",")):  # fmt: skip
                        if fused and (B < 2 or jax.default_backend() != "gpu" or not S._fused.available()):
                            continue  # Triton's kernels, on a GPU
                        t = iteration_time(X, y, B, check_every=args.check_every, unroll=unroll,
                                           graphs=graphs, fused=fused)  # fmt: skip
                        bound = max(2 * X.nbytes / bw, 4 * n * p * B / rate)
                        yes = lambda f: "yes" if f else "no"  # noqa: E731
                        lines.append(f"| {name} {n}x{p} | {dt} | {B} | {yes(unroll)} | {yes(graphs)} | "
                                     f"{yes(fused)} | {t * 1e6:.1f} | {bound * 1e6:.1f} | {t / bound:.2f} | "
                                     f"{bw / 1e9:.0f} | "
                                     f"{rate / 1e12:.2f} |")
                        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "iteration.md").write_text(text)


if __name__ == "__main__":
    main()
