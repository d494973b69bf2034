"""Path and CV benchmarks: jaxreg against scikit-learn, celer and skglm, measured side by side.

Every solution's duality gap is recomputed in NumPy; a method whose solution misses the tolerance
anywhere on the path is flagged (``ok = False``) and its time does not count in the ratios.  The
steady time of a method is the best of ``--repeat`` runs after the first call, and of more where
those take less than ``MIN_STEADY_SECONDS`` together (fast paths scatter most from run to run).

    python benchmarks/run.py                       # all problems, float64 and float32
    python benchmarks/run.py --problems wide --dtypes float64 --repeat 1
    python benchmarks/run.py --scale 0.2           # small sizes for a quick look

Writes ``results.csv``, ``results.md`` and ``results.png`` to ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import problems as P  # noqa: E402

import jaxreg as jr  # noqa: E402

TOL = 1e-4
N_ALPHAS = 100
EPS = 1e-3
N_CS = 50


#: steady-state runs continue past ``--repeat`` until they add up to this many seconds (at most
#: MAX_RUNS): a 20 ms path is then the best of 25 runs, not of 2, for every method alike
MIN_STEADY_SECONDS = 0.5
MAX_RUNS = 50


def timed(fn, repeat: int):
    """(first-call seconds, best steady-state seconds, last output)."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    best, spent, runs = first, 0.0, 0
    while runs < repeat or (spent < MIN_STEADY_SECONDS and runs < MAX_RUNS):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        took = time.perf_counter() - t0
        best, spent, runs = min(best, took), spent + took, runs + 1
    return first, best, out


def check_path(prob, alphas, coefs, intercepts, dtype_tol=0.0):
    """Largest gap / (tol * scale) over the path, computed in float64 NumPy."""
    gap_fn = P.logistic_gap if prob.kind == "logistic" else P.lasso_gap
    scale = P.tol_scale(prob.y, prob.kind)
    worst = 0.0
    for a, c, b in zip(alphas, coefs, intercepts):
        worst = max(worst, gap_fn(prob.X, prob.y, np.asarray(c, float), float(b), float(a)) / (TOL * scale))
    return worst


def record(rows, problem, shape, dtype, method, first, steady, worst, ok=True, extra=""):
    """Append one result row (a gap above the tolerance marks it not ok) and print it."""
    ok = bool(ok and not worst > 1.0 + 1e-6)
    rows.append(dict(problem=problem, shape=f"{shape[0]}x{shape[1]}", dtype=np.dtype(dtype).name, method=method,
                     first_s=first, steady_s=steady, worst_gap_over_tol=worst, ok=ok))
    print(f"  {problem:8s} {np.dtype(dtype).name:8s} {method:22s} first {first:8.3f}s  steady {steady:8.3f}s  "
          f"gap/tol {worst:8.3g} {extra}", flush=True)


PEERS = {"sklearn", "celer", "skglm", "liblinear"}  # --peers selects among them
BLOCK_SIZES = ["auto"]  # --block-sizes: jaxreg rows, the first being the default


def _peer(name, module, attr):
    """``module.attr`` when the peer ``name`` is selected and installed, else ``None``."""
    if name not in PEERS:
        return None
    try:
        return getattr(__import__(module), attr)
    except ImportError:
        return None


def _block_label(bs):
    return "jaxreg" if bs == BLOCK_SIZES[0] else f"jaxreg bs={'all' if bs is None else bs}"


def bench_lasso_path(prob, dtype, repeat, rows):
    X = prob.X.astype(dtype)
    y = prob.y.astype(dtype)
    alphas = np.asarray(jr.path(prob.X, prob.y, alphas=N_ALPHAS, eps=EPS, max_iter=1).alphas)
    Xc, yc = prob.X - prob.X.mean(0), prob.y - prob.y.mean()

    def add(method, first, steady, coefs, intercepts):
        record(rows, prob.name, prob.X.shape, dtype, method, first, steady, check_path(prob, alphas, coefs, intercepts))

    for bs in BLOCK_SIZES:
        f, s, res = timed(lambda: jr.path(X, y, alphas=alphas.astype(dtype), tol=TOL, block_size=bs), repeat)
        add(_block_label(bs), f, s, np.asarray(res.coef), np.asarray(res.intercept))
    if dtype != np.float64 or "sklearn" not in PEERS:
        return  # the peers compute in float64 only; their rows come from the float64 run

    from sklearn.linear_model import lasso_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f, s, out = timed(lambda: lasso_path(Xc, yc, alphas=alphas, tol=TOL), repeat)
    coefs = out[1].T
    add("sklearn.lasso_path", f, s, coefs, prob.y.mean() - coefs @ prob.X.mean(0))
    celer_path = _peer("celer", "celer", "celer_path")
    if celer_path is not None:
        f, s, out = timed(lambda: celer_path(Xc, yc, "lasso", alphas=alphas, tol=TOL), repeat)
        coefs = out[1].T
        add("celer", f, s, coefs, prob.y.mean() - coefs @ prob.X.mean(0))
    SkLasso = _peer("skglm", "skglm", "Lasso")
    if SkLasso is not None:
        def skglm_path():
            est = SkLasso(alpha=alphas[0], tol=TOL, fit_intercept=False, warm_start=True)
            out = []
            for a in alphas:
                est.alpha = a
                out.append(est.fit(Xc, yc).coef_.copy())
            return np.array(out)

        f, s, coefs = timed(skglm_path, repeat)
        add("skglm", f, s, coefs, prob.y.mean() - coefs @ prob.X.mean(0))


def bench_logistic(prob, dtype, repeat, rows):
    X = prob.X.astype(dtype)
    y = prob.y.astype(dtype)
    n = len(y)
    amax = float(jr.alpha_max(prob.X, prob.y, jr.LogisticLoss()))
    alphas = amax * np.logspace(0, np.log10(EPS), N_CS)
    Cs = 1.0 / (alphas * n)

    def add(method, first, steady, coefs, intercepts):
        record(rows, prob.name, prob.X.shape, dtype, method, first, steady, check_path(prob, alphas, coefs, intercepts))

    for bs in BLOCK_SIZES:
        f, s, res = timed(
            lambda: jr.path(X, y, jr.LogisticLoss(), alphas=alphas.astype(dtype), tol=TOL, block_size=bs), repeat
        )
        add(_block_label(bs), f, s, np.asarray(res.coef), np.asarray(res.intercept))
    if dtype != np.float64:
        return
    # Each peer at tol=TOL, and with the loosest settings that met this problem's tolerance in a scan
    # (benchmarks/README.md): liblinear penalizes its intercept (intercept_scaling=1 by default), so
    # at its defaults it solves another problem whatever its tol.
    if "liblinear" in PEERS:
        from sklearn.linear_model import LogisticRegression

        settings = {"sklearn.liblinear": {"tol": TOL},
                    "sklearn.liblinear tol=1e-5 intercept_scaling=1e4": {"tol": 1e-5, "intercept_scaling": 1e4}}
        for label, opts in settings.items():
            def liblinear_path(opts=opts):
                out = []
                for C in Cs:
                    m = LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", max_iter=1000, **opts)
                    m.fit(prob.X, prob.y)
                    out.append((m.coef_[0].copy(), m.intercept_[0]))
                return np.array([o[0] for o in out]), np.array([o[1] for o in out])

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f, s, (coefs, intercepts) = timed(liblinear_path, repeat)
            add(label, f, s, coefs, intercepts)
    SkLogistic = _peer("skglm", "skglm", "SparseLogisticRegression")
    if SkLogistic is not None:
        for label, tol in (("skglm", TOL), ("skglm tol=1e-6", 1e-6)):
            def skglm_path(tol=tol):
                est = SkLogistic(alpha=alphas[0], tol=tol, max_iter=50, fit_intercept=True, warm_start=True)
                out = []
                for a in alphas:
                    est.alpha = a
                    est.fit(prob.X, prob.y)
                    out.append((est.coef_.ravel().copy(), float(np.ravel(est.intercept_)[0])))
                return np.array([o[0] for o in out]), np.array([o[1] for o in out])

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f, s, (coefs, intercepts) = timed(skglm_path, repeat)
            add(label, f, s, coefs, intercepts)


def bench_cv(prob, dtype, repeat, rows):
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold

    X = prob.X.astype(dtype)
    y = prob.y.astype(dtype)
    alphas = np.asarray(jr.path(prob.X, prob.y, alphas=N_ALPHAS, eps=EPS, max_iter=1).alphas)
    kf = KFold(5)

    def add(method, first, steady, alpha, coefs, intercepts, extra_ok=True):
        worst = check_path(prob, alphas, coefs, intercepts) if coefs is not None else float("nan")
        record(rows, "cv5-" + prob.name, prob.X.shape, dtype, method, first, steady, worst, extra_ok,
               f"alpha {alpha:.4g}")

    for bs in BLOCK_SIZES:
        f, s, res = timed(
            lambda: jr.cross_validate(X, y, alphas=alphas.astype(dtype), cv=kf, tol=TOL, block_size=bs), repeat
        )
        add(_block_label(bs), f, s, res.alpha_min, np.asarray(res.path.coef), np.asarray(res.path.intercept),
            extra_ok=bool(np.all(res.fold_converged)))
    if dtype != np.float64:
        return
    if jax.default_backend() == "cpu":  # the paths in one program, one after the other (no host threads)
        f, s, res = timed(lambda: jr.cross_validate(X, y, alphas=alphas, cv=kf, tol=TOL, threads=1), repeat)
        add("jaxreg threads=1", f, s, res.alpha_min, np.asarray(res.path.coef), np.asarray(res.path.intercept),
            extra_ok=bool(np.all(res.fold_converged)))
    if "sklearn" not in PEERS:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f, s, m = timed(lambda: LassoCV(alphas=alphas, cv=kf, tol=TOL).fit(prob.X, prob.y), repeat)
        add("sklearn.LassoCV", f, s, m.alpha_, None, None)
        # scikit-learn fits the folds on threads too when asked: one per core, as jaxreg's default
        f, s, m = timed(lambda: LassoCV(alphas=alphas, cv=kf, tol=TOL, n_jobs=-1).fit(prob.X, prob.y), repeat)
        add("sklearn.LassoCV n_jobs=-1", f, s, m.alpha_, None, None)


def write(rows, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"# jaxreg benchmarks ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__}, {jax.devices()[0].platform}: {jax.devices()[0].device_kind})",
        "",
        f"Path of {N_ALPHAS} alphas down to {EPS} alpha_max (logistic: {N_CS} C values), tol {TOL} "
        "(scikit-learn's meaning), gaps verified in NumPy. Ratios: jaxreg's steady time (default block_size, "
        "float64 or float32) over the peer's (the peers compute in float64); a row that misses the "
        "tolerance gets none.",
        "",
        "| problem | shape | dtype | method | first call (s) | steady (s) | worst gap / tol | ok "
        "| jaxreg float64 / this | jaxreg float32 / this |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratios = []
        for dt in ("float64", "float32"):
            ours = [q for q in rows if q["problem"] == r["problem"] and q["method"] == "jaxreg" and q["dtype"] == dt]
            peer = not r["method"].startswith("jaxreg")
            ok = peer and ours and r["ok"] and ours[0]["ok"]
            ratios.append(f"{ours[0]['steady_s'] / r['steady_s']:.2f}" if ok else "")
        lines.append(
            f"| {r['problem']} | {r['shape']} | {r['dtype']} | {r['method']} | {r['first_s']:.3f} | "
            f"{r['steady_s']:.3f} | {r['worst_gap_over_tol']:.3g} | {'yes' if r['ok'] else 'NO'} | "
            f"{ratios[0]} | {ratios[1]} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    probs = list(dict.fromkeys(r["problem"] for r in rows))
    # one bar per method and dtype: the peers in float64, jaxreg in each dtype measured
    series = list(dict.fromkeys((r["method"], r["dtype"]) for r in rows if r["ok"]))
    if not series:
        return
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(series)
    for k, (m, dt) in enumerate(series):
        vals = []
        for pname in probs:
            hit = [r for r in rows if r["problem"] == pname and r["method"] == m and r["dtype"] == dt and r["ok"]]
            vals.append(hit[0]["steady_s"] if hit else np.nan)
        ax.bar(np.arange(len(probs)) + k * width, vals, width, label=m if m != "jaxreg" else f"jaxreg {dt}")
    ax.set_xticks(np.arange(len(probs)) + 0.4 - width / 2, probs)
    ax.set_yscale("log")
    ax.set_ylabel("steady-state time (s, log scale)")
    ax.set_title(f"Regularization path, tol {TOL:g}, gaps verified (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=110)


def use_fused(on: bool, tiles: str = "") -> None:
    """``jaxreg.solvers.FUSED`` and the tiles ``TK,TN_LOOP,TN,TK_LOOP[,TB]`` of ``jaxreg._fused``.
    Kernels asked for where they cannot run stop the run: its times would be XLA's steps."""
    jr.solvers.FUSED = on
    if tiles:
        for name, value in zip(("TK", "TN_LOOP", "TN", "TK_LOOP", "TB"), map(int, tiles.split(","))):
            setattr(jr._fused, name, value)
    if on and not jr._fused.available():
        triton = "present" if jr._fused._triton() is not None else "missing"
        raise SystemExit(f"--fused on: jaxreg._fused's kernels cannot run here (backend "
                         f"{jax.default_backend()}, jax {jax.__version__}, Pallas' Triton module {triton})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="wide,tall,square,logistic,cv")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the problem sizes")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--peers", default="sklearn,celer,skglm,liblinear",
                    help="peers to run (comma-separated; '' for none): sklearn (lasso_path, LassoCV), celer, "
                         "skglm, liblinear (scikit-learn's, on the L1-logistic path)")
    ap.add_argument("--block-sizes", default="auto",
                    help="jaxreg block_size values, one row each ('all' = every alpha at once, 'auto' = the "
                         "default); the first is the one the ratios use")
    ap.add_argument("--gpu-graphs", choices=("on", "off"), default="off",
                    help="on: compile jaxreg's programs with its while loops as CUDA graphs (command buffers "
                         "problems.GPU_COMMAND_BUFFERS) instead of XLA's defaults; no effect on a CPU")
    ap.add_argument("--fused-tiles", default="",
                    help="with --fused on: TK,TN_LOOP,TN,TK_LOOP[,TB] of jaxreg._fused (powers of two)")
    ap.add_argument("--fused", choices=("on", "off"), default="off",
                    help="on: FISTA's steps by jaxreg._fused's Pallas kernels where they apply "
                         "(jaxreg.solvers.FUSED)")
    args = ap.parse_args(argv)
    use_fused(args.fused == "on", args.fused_tiles)
    if args.gpu_graphs == "on":
        from jaxreg import _precision

        _precision.COMPILER_OPTIONS["xla_gpu_enable_command_buffer"] = P.GPU_COMMAND_BUFFERS
        _precision._options_for.cache_clear()
    PEERS.intersection_update(filter(None, args.peers.split(",")))
    BLOCK_SIZES[:] = [None if b == "all" else b if b == "auto" else int(b) for b in args.block_sizes.split(",")]
    rows = []
    for name in args.problems.split(","):
        prob = P.make("wide" if name == "cv" else name, args.scale)
        for dt in args.dtypes.split(","):
            dtype = np.dtype(dt).type
            if name == "cv":
                bench_cv(prob, dtype, args.repeat, rows)
            elif name == "logistic":
                bench_logistic(prob, dtype, args.repeat, rows)
            else:
                bench_lasso_path(prob, dtype, args.repeat, rows)
            write(rows, Path(args.out))  # after every problem, so a cut-off run keeps what it measured
    print((Path(args.out) / "results.md").read_text())


if __name__ == "__main__":
    main()
