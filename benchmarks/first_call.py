"""Where a first call's time goes: tracing, lowering, XLA compilation and the run, per problem.

Each problem runs in a fresh Python process (a first call is only first once), through the public
entry point a user calls (``jr.path``, ``jr.cross_validate``), from NumPy data.  JAX reports the
duration of every tracing, lowering and compilation through ``jax.monitoring``; the script adds them
up and counts the programs compiled, then times the same call again (best of ``--repeat``).

    python benchmarks/first_call.py                      # every problem, float64
    python benchmarks/first_call.py --problems wide cv --dtype float32

Columns: the first call; the XLA compilations in it (count and seconds; the path program is the
largest); tracing to jaxprs and lowering to MLIR (seconds); the rest (running, host work); the best
steady time.  The benchmark table of ``run.py`` measures first calls after a warm-up call with
``max_iter=1`` (which compiles the small programs around the path), so its first calls are shorter.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROBLEMS = ("wide", "tall", "square", "logistic", "cv")

CHILD = r"""
import json, sys, time
from collections import defaultdict
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
sys.path.insert(0, {here!r})
import problems as P
import jaxreg as jr

name, dtype, repeat = {name!r}, np.dtype({dtype!r}), {repeat}
prob = P.make("wide" if name == "cv" else name)
X, y = prob.X.astype(dtype), prob.y.astype(dtype)
if name == "cv":
    from sklearn.model_selection import KFold
    folds = KFold(5)
    call = lambda: jr.cross_validate(X, y, alphas=100, eps=1e-3, cv=folds, tol=1e-4).path.coef
elif name == "logistic":
    call = lambda: jr.path(X, y, jr.LogisticLoss(), alphas=50, eps=1e-3, tol=1e-4).coef
else:
    call = lambda: jr.path(X, y, alphas=100, eps=1e-3, tol=1e-4).coef
seconds, counts = defaultdict(float), defaultdict(int)

def listen(event, duration, **_):
    key = event.rsplit("/", 1)[-1]
    seconds[key] += duration
    counts[key] += 1

jax.monitoring.register_event_duration_secs_listener(listen)
t0 = time.perf_counter()
jax.block_until_ready(call())
first = time.perf_counter() - t0
steady = []
for _ in range(repeat):
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    steady.append(time.perf_counter() - t0)
print(json.dumps(dict(first=first, steady=min(steady), compiles=counts["backend_compile_duration"],
                      compile=seconds["backend_compile_duration"],
                      trace=seconds["jaxpr_trace_duration"] + seconds["jaxpr_to_mlir_module_duration"])))
"""


def measure(name: str, dtype: str, repeat: int) -> dict:
    code = CHILD.format(here=str(Path(__file__).parent), name=name, dtype=dtype, repeat=repeat)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"| problem ({args.dtype}) | first call (s) | compiled programs | XLA compile (s) | trace + lower (s) "
          "| rest (s) | steady (s) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.problems:
        r = measure(name, args.dtype, args.repeat)
        rest = r["first"] - r["compile"] - r["trace"]
        print(f"| {name} | {r['first']:.2f} | {r['compiles']} | {r['compile']:.2f} | {r['trace']:.2f} | "
              f"{rest:.2f} | {r['steady']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
