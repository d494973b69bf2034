"""The two ways to write ``X.T @ G``: as written, or as ``(G.T @ X).T`` (rows of ``G.T`` times ``X``).

The solver's every gradient is ``X.T @ G`` with one column per lane.  XLA:CPU lowers the two forms
to different kernels, and with one column the first is several times slower (``jaxreg.solvers.rmatmul``
uses the second).  This prints, per design shape, dtype and number of columns, the time of both::

    python benchmarks/products.py                  # the benchmark designs, 1 to 100 columns
    python benchmarks/products.py --out results    # also writes products.md there
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

SHAPES = [(500, 1024), (500, 5000), (2000, 1000), (2000, 2000), (20000, 200)]


def best_of(fn, *args, repeat: int = 10) -> float:
    """Mean seconds of ``repeat`` calls after a warm-up, best of three such means."""
    jax.block_until_ready(fn(*args))
    means = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeat):
            out = fn(*args)
        jax.block_until_ready(out)
        means.append((time.perf_counter() - t) / repeat)
    return min(means)


as_written = jax.jit(lambda X, G: X.T @ G)
as_rows = jax.jit(lambda X, G: (G.T @ X).T)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lanes", default="1,4,10,30,100")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    lines = [
        f"# X.T @ G against (G.T @ X).T ({dev.platform}: {dev.device_kind}, jax {jax.__version__})",
        "",
        "| X | dtype | columns of G | X.T @ G (ms) | (G.T @ X).T (ms) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    for dt in args.dtypes.split(","):
        for n, p in SHAPES:
            X = jnp.asarray(rng.standard_normal((n, p)), dt)
            for B in (int(b) for b in args.lanes.split(",")):
                G = jnp.asarray(rng.standard_normal((n, B)), dt)
                t1, t2 = best_of(as_written, X, G), best_of(as_rows, X, G)
                lines.append(f"| {n}x{p} | {dt} | {B} | {t1 * 1e3:.3f} | {t2 * 1e3:.3f} | {t1 / t2:.2f} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "products.md").write_text(text)


if __name__ == "__main__":
    main()
