"""Working-set buckets, the Gram-matrix bound and the LLVM level, compared side by side in one process.

The solver's static working-set capacities (``jaxreg.solvers.capacities``), the bound under which
squared loss is solved on a working set's Gram matrix (``_Config.gram_ratio``) and the optimization
level XLA:CPU compiles with (``jaxreg._precision.CPU_COMPILER_OPTIONS``) trade compile time against
steady time.  This script fits one benchmark problem under several settings, compiles each once,
then times them in interleaved rounds (best of the rounds), so that the drift of a shared machine
falls on all of them alike.

    python benchmarks/buckets.py wide                   # the default settings against the others
    python benchmarks/buckets.py cv --rounds 5 --settings "64,256,1024,4096:2" "64,256,512,1024,4096:0.25"

A setting is ``LADDER:RATIO[:LEVEL[:PASSES]]``: the bucket sizes (each kept where twice it fits in
the features, as ``capacities`` does, but all of them: ``solvers.MAX_BUCKETS`` does not apply;
``default`` for jaxreg's own buckets, ``none`` for no working sets), the Gram bound as a multiple
of ``n_samples`` and, optionally, ``xla_backend_optimization_level`` and ``xla_disable_hlo_passes``
(jaxreg's own choices when left out or ``-``; ``none`` disables no pass).  Prints one line per
setting: first call (compile included), best steady time, FISTA iterations summed over the path.

    python benchmarks/buckets.py logistic --settings "64,256,512,1024,4096:0.25:3" "64,256,512,1024,4096:0.25:1"
    python benchmarks/buckets.py tall --settings "64,256,512,1024,4096:0.25" "64,256,512,1024,4096:0.25:-:none"

The first setting's first call also compiles the small programs around the path: compare first
calls from the second setting on, or put the setting of interest second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import problems as P

import jaxreg as jr
from jaxreg import _precision
from jaxreg import solvers as S

_path = importlib.import_module("jaxreg.path")  # the module (jaxreg.path is the function)
_cv = importlib.import_module("jaxreg.cv")
DEFAULTS = [
    "default:0.25",
    "64,256,512,1024,4096:0.25",
    "64,256,1024,4096:2",
    "64,512,1024,4096:0.25",
    "64,256,512,1024,4096:2",
]


def parse(setting: str) -> tuple[tuple[int, ...] | None, float, int | None, str | None]:
    ladder, ratio, *rest = setting.split(":") + ["-", "-"]
    level, passes = (None if v == "-" else v for v in rest[:2])
    if ladder == "default":
        sizes = None
    elif ladder == "none":
        sizes = ()
    else:
        sizes = tuple(int(k) for k in ladder.split(","))
    return sizes, float(ratio), None if level is None else int(level), passes


def programs(level: int | None, passes: str | None) -> tuple:
    """The path and CV programs, compiled at ``level`` with ``passes`` disabled (``None``: as jaxreg
    compiles them)."""
    paths, cv = _path._path_program, _cv._cv_program
    if level is None and passes is None:
        return paths, cv
    opts = dict(_precision._options())
    if level is not None:
        opts["xla_backend_optimization_level"] = level
    if passes is not None:
        opts["xla_disable_hlo_passes"] = "" if passes == "none" else passes
    jit = lambda c: jax.jit(
        _precision.full_precision(c._fn), static_argnames=c._static, compiler_options=opts
    )
    return jit(paths), jit(cv)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("problem", choices=("wide", "tall", "square", "logistic", "cv"))
    ap.add_argument("--settings", nargs="+", default=DEFAULTS)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args(argv)
    settings = [parse(s) for s in args.settings]
    current = [settings[0]]
    make_config = _path._path_config
    compiled = {s: programs(s[2], s[3]) for s in settings}

    def patched(*a, **k):  # the path (and CV) configuration, with this setting's Gram bound
        cfg = make_config(*a, **k)
        return cfg._replace(solver=cfg.solver._replace(gram_ratio=current[0][1]))

    _path._path_config = patched
    # and this setting's buckets (path and CV call solvers.capacities through the module)
    def capacities(penalty, n, p, _caps=S.capacities):
        ladder = current[0][0]
        if ladder == ():  # no working sets: every solve on all features
            return ()
        return _caps(penalty, n, p) if ladder is None else _caps(penalty, n, p, ladder, len(ladder))

    S.capacities = capacities

    def use(s):
        current[0] = s
        _path._path_program, _cv._cv_program = compiled[s]

    prob = P.make("wide" if args.problem == "cv" else args.problem)
    X, y = prob.X, prob.y
    if args.problem == "logistic":
        alphas = float(jr.alpha_max(X, y, jr.LogisticLoss())) * np.logspace(0, -3, 50)
        fit = lambda: jr.path(X, y, jr.LogisticLoss(), alphas=alphas, tol=1e-4)
    else:
        alphas = np.asarray(jr.path(X, y, alphas=100, eps=1e-3, max_iter=1).alphas)
        if args.problem == "cv":
            from sklearn.model_selection import KFold

            fit = lambda: jr.cross_validate(X, y, alphas=alphas, cv=KFold(5), tol=1e-4).path
        else:
            fit = lambda: jr.path(X, y, alphas=alphas, tol=1e-4)
    first, best, iters = {}, dict.fromkeys(settings, np.inf), {}
    for s in settings:
        use(s)
        t0 = time.perf_counter()
        res = jax.block_until_ready(fit())
        first[s] = time.perf_counter() - t0
        iters[s] = int(np.sum(res.n_iter))
    for _ in range(args.rounds):
        for s in settings:
            use(s)
            t0 = time.perf_counter()
            jax.block_until_ready(fit())
            best[s] = min(best[s], time.perf_counter() - t0)
    print(f"{args.problem} {X.shape[0]}x{X.shape[1]}, best of {args.rounds} interleaved rounds")
    for s, setting in zip(settings, args.settings):
        print(f"  {setting:30s} first {first[s]:6.2f} s  steady {best[s]:7.3f} s  iterations {iters[s]}")


if __name__ == "__main__":
    main()
