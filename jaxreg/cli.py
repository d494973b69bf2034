"""The ``jaxreg`` command.

``jaxreg path [DATA.csv] --target COL`` fits a regularization path with K-fold cross-validation in
one compiled call and writes, under ``--out``:

- ``coef_path.csv``: one row per alpha: ``alpha``, ``intercept`` and one column per feature
  (coefficients on the original scale of the data);
- ``cv.csv``: one row per alpha: ``alpha``, ``n_nonzero``, the mean and standard error of the
  held-out score, and the score of every fold;
- ``summary.json`` and ``summary.txt``: ``alpha_min``, ``alpha_1se``, their scores and the selected
  features with their coefficients (``summary.txt`` is what the command prints);
- ``path.png`` and ``cv.png`` (when matplotlib is installed).

Without ``DATA.csv`` it uses the diabetes data of the LARS paper (:func:`jaxreg.datasets.load_diabetes`).
Features are standardized (mean 0, standard deviation 1) before the fit unless ``--no-standardize``
is given, so that one alpha penalizes every feature alike; alphas refer to the standardized problem,
and coefficients are reported on the original scale. Computations run in float64 unless
``--float32`` is given.

Errors a user can cause (a missing or malformed file, a missing column, a bad option value, a target
the loss cannot fit) end with one line ``jaxreg: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import jax
import numpy as np

from . import __version__, datasets
from .cv import cross_validate
from .losses import LogisticLoss, PoissonLoss, SquaredLoss
from .path import alpha_grid, alpha_max, path
from .penalties import L1, L2, ElasticNet

__all__ = ["main"]

LOSSES = ("squared", "logistic", "poisson")
PENALTIES = ("l1", "l2", "elasticnet")
_PENALTY_NAMES = {"l1": "lasso (L1)", "l2": "ridge (L2)", "elasticnet": "elastic net"}
# Ridge has no finite alpha_max; as glmnet does, its grid starts where an elastic net with this
# l1_ratio would have every coefficient at zero.
_RIDGE_L1_RATIO = 1e-3


class UsageError(Exception):
    """A problem with the command line or the data that the user can fix."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default prints the usage and exits
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxreg", description="Regularization paths with cross-validation, fit with JAX.")
    parser.add_argument("--version", action="version", version=f"jaxreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser(
        "path",
        help="fit a regularization path with cross-validation; write tables, a summary and plots",
        description=(
            "Fit a regularization path with K-fold cross-validation (all folds and alphas in one "
            "compiled program) and write coef_path.csv, cv.csv, summary.json, summary.txt, path.png "
            "and cv.png to --out. Without DATA, the built-in diabetes data of the LARS paper "
            "(Efron et al. 2004; target 'y') is used."
        ),
    )
    p.add_argument("data", nargs="?", metavar="DATA.csv",
                   help="CSV file with a header row and numeric cells (default: built-in diabetes data)")
    p.add_argument("--target", metavar="COL", help="name of the target column (required with DATA.csv)")
    p.add_argument("--loss", choices=LOSSES, default="squared",
                   help="squared (regression), logistic (0/1 labels) or poisson (counts); default squared")
    p.add_argument("--penalty", choices=PENALTIES, default="l1", help="default l1 (the lasso)")
    p.add_argument("--l1-ratio", type=float, default=None, metavar="R",
                   help="elastic-net mixing in [0, 1]: 1 is the lasso, 0 ridge (default 0.5)")
    p.add_argument("--cv", type=int, default=5, metavar="K",
                   help="number of cross-validation folds (default 5; 0 fits the path only)")
    p.add_argument("--alphas", type=int, default=100, metavar="N", help="number of alphas (default 100)")
    p.add_argument("--eps", type=float, default=1e-3,
                   help="smallest alpha / largest alpha (default 1e-3; for l2, relative to the lasso's "
                        "alpha_max, the grid starting 1000 times higher)")
    p.add_argument("--scoring", default=None, metavar="NAME",
                   help="CV score: mse or mae (squared), deviance, misclassification, auc or mse "
                        "(logistic), deviance, mse or mae (poisson); default the first")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the random assignment of samples to folds (default 0)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="fit on the features as given instead of standardized ones")
    p.add_argument("--tol", type=float, default=1e-4, help="duality-gap tolerance (default 1e-4)")
    p.add_argument("--max-iter", type=int, default=10_000, metavar="N",
                   help="iterations per fit (default 10000)")
    p.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    p.add_argument("--out", default="jaxreg-results", metavar="DIR",
                   help="output directory (default ./jaxreg-results)")
    p.add_argument("--quiet", "-q", action="store_true", help="print neither progress nor the summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxreg`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return _run_path(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except (UsageError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_os_message(exc))
    except KeyboardInterrupt:
        print("\njaxreg: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print("jaxreg: error: " + " ".join(message.split()), file=sys.stderr)
    return 2


def _os_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


# -- progress -------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal: stage ``i`` of ``n``, its name and its elapsed time.

    Each stage is a ``with progress.stage(name):`` block; while it runs, a background thread redraws
    the elapsed time so that a long compiled call visibly makes progress. Nothing is drawn when
    ``enabled`` is false.
    """

    def __init__(self, n_stages: int, enabled: bool, stream: TextIO | None = None, width: int = 20):
        self.n = n_stages
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.done = 0
        self._last = 0

    def _draw(self, number: int, name: str, elapsed: float, spin: str) -> None:
        filled = round(self.width * self.done / self.n)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {number}/{self.n} {name} {spin} {elapsed:5.1f}s"
        self.stream.write("\r" + line + " " * max(0, self._last - len(line)))
        self.stream.flush()
        self._last = len(line)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            self.done += 1
            return
        number = self.done + 1
        start = time.monotonic()
        stop = threading.Event()

        def tick() -> None:
            for spin in itertools.cycle("|/-\\"):
                if stop.wait(0.2):
                    return
                self._draw(number, name, time.monotonic() - start, spin)

        self._draw(number, name, 0.0, " ")
        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.done += 1
            self._draw(number, name, time.monotonic() - start, "done")
            if self.done >= self.n:
                self.clear()

    def clear(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r" + " " * self._last + "\r")
            self.stream.flush()
            self._last = 0


# -- the path command -----------------------------------------------------------------------------


def _check_options(args: argparse.Namespace) -> None:
    if args.data is not None and args.target is None:
        raise UsageError("--target COL is required with a data file (the name of the column to predict)")
    if args.cv == 1 or args.cv < 0:
        raise UsageError(f"--cv must be 0 (no cross-validation) or at least 2, got {args.cv}")
    if args.alphas < 2:
        raise UsageError(f"--alphas must be at least 2, got {args.alphas}")
    if not 0 < args.eps < 1:
        raise UsageError(f"--eps must lie in (0, 1), got {args.eps}")
    if args.l1_ratio is not None:
        if args.penalty != "elasticnet":
            raise UsageError("--l1-ratio goes with --penalty elasticnet")
        if not 0 <= args.l1_ratio <= 1:
            raise UsageError(f"--l1-ratio must lie in [0, 1], got {args.l1_ratio}")
    if not (args.tol > 0 and np.isfinite(args.tol)):
        raise UsageError(f"--tol must be positive, got {args.tol}")
    if args.max_iter < 1:
        raise UsageError(f"--max-iter must be positive, got {args.max_iter}")


def _load(args: argparse.Namespace) -> tuple[datasets.Dataset, str]:
    if args.data is None:
        data = datasets.load_diabetes()
        if args.target not in (None, data.target_name):
            raise UsageError(
                f"the built-in diabetes data has target column 'y', not {args.target!r} (give DATA.csv)"
            )
        return data, "diabetes (built-in; Efron, Hastie, Johnstone & Tibshirani 2004)"
    if not args.data:
        raise UsageError("DATA.csv is an empty string; give the path of a CSV file")
    if "\0" in args.data:  # open() would say only "embedded null byte"
        raise UsageError(f"{args.data!r} is not a valid file name: it contains a NUL character")
    if os.path.isdir(args.data):
        raise UsageError(f"{args.data} is a directory, not a CSV file")
    return datasets.read_csv(args.data, args.target), args.data


def _model(args: argparse.Namespace) -> tuple[Any, Any]:
    loss = {"squared": SquaredLoss, "logistic": LogisticLoss, "poisson": PoissonLoss}[args.loss]()
    if args.penalty == "l1":
        return loss, L1()
    if args.penalty == "l2":
        return loss, L2()
    return loss, ElasticNet(l1_ratio=0.5 if args.l1_ratio is None else args.l1_ratio)


def _alphas(args: argparse.Namespace, X: Any, y: Any, loss: Any, penalty: Any) -> Any:
    """``args.alphas`` (jaxreg picks the grid) or, for ridge, an explicit grid."""
    if args.penalty != "l2":
        return args.alphas
    a_max = alpha_max(X, y, loss, ElasticNet(l1_ratio=_RIDGE_L1_RATIO))
    return np.asarray(alpha_grid(a_max, args.alphas, args.eps * _RIDGE_L1_RATIO))


def _run_path(args: argparse.Namespace) -> int:
    _check_options(args)
    show = not args.quiet
    progress = Progress(4, enabled=show and sys.stderr.isatty())
    with progress.stage("reading data"):
        data, source = _load(args)
        X, y = data.X, data.y
        mean, scale = _standardization(X, args.standardize)
        Xs = (X - mean) / scale
    loss, penalty = _model(args)
    os.makedirs(args.out, exist_ok=True)  # before the fit: an unwritable --out fails at once
    fit_name = f"fitting {args.alphas} alphas" + (f" x ({args.cv} folds + full data)" if args.cv else "")
    with jax.enable_x64(not args.float32), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with progress.stage(fit_name):
            fit = _fit(args, Xs, y, loss, penalty)
    notes = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, UserWarning)]
    notes += _convergence_notes(fit, args)
    with progress.stage("writing tables"):
        report = _Report(args, data, source, mean, scale, fit)
        files = report.write_tables()
    with progress.stage("drawing plots"):
        plotted, why = report.write_plots()
    files += plotted
    if why:
        notes.append(why)
    text = report.summary_text(files)
    report.write_summary(text, files)
    progress.clear()
    for note in notes:
        print(f"jaxreg: warning: {note}", file=sys.stderr)
    if show:
        print(text, end="")
    return 0


def _standardization(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (1/n) of each column; (0, 1) when not standardizing.

    A constant column keeps scale 1 (it is centered to zero and its coefficient stays zero).
    """
    p = X.shape[1]
    if not standardize:
        return np.zeros(p), np.ones(p)
    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    return mean, np.where(sd > 0, sd, 1.0)


def _fit(args: argparse.Namespace, X: np.ndarray, y: np.ndarray, loss: Any, penalty: Any) -> Any:
    dtype = np.float32 if args.float32 else np.float64
    X = X.astype(dtype)
    y = y.astype(dtype)
    alphas = _alphas(args, X, y, loss, penalty)
    common = dict(alphas=alphas, eps=args.eps, tol=args.tol, max_iter=args.max_iter)
    if args.cv:
        if args.cv > X.shape[0]:
            raise UsageError(f"--cv {args.cv} is more folds than the {X.shape[0]} samples")
        return cross_validate(
            X, y, loss, penalty, cv=args.cv, shuffle=True, random_state=args.seed, scoring=args.scoring,
            **common,
        )
    if args.scoring is not None:
        raise UsageError("--scoring needs cross-validation (--cv K with K >= 2)")
    return path(X, y, loss, penalty, **common)


def _convergence_notes(fit: Any, args: argparse.Namespace) -> list[str]:
    path = fit.path if args.cv else fit
    bad = int(np.size(path.converged) - np.count_nonzero(np.asarray(path.converged)))
    notes = []
    if bad:
        notes.append(f"{bad} of {np.size(path.converged)} fits on the full data did not reach --tol "
                     f"{args.tol:g} within --max-iter {args.max_iter}")
    if args.cv:
        folds = np.asarray(fit.fold_converged)
        if not folds.all():
            notes.append(f"{folds.size - np.count_nonzero(folds)} of {folds.size} cross-validation fits "
                         f"did not reach --tol {args.tol:g} within --max-iter {args.max_iter}")
    return notes


class _Report:
    """Tables, summary and plots of one fit; coefficients back on the original scale of the data."""

    def __init__(self, args: argparse.Namespace, data: Any, source: str, mean: np.ndarray,
                 scale: np.ndarray, fit: Any) -> None:
        self.args = args
        self.data = data
        self.source = source
        self.names = list(data.feature_names)
        self.cv = fit if args.cv else None
        self.path = fit.path if args.cv else fit
        self.alphas = np.asarray(self.path.alphas, dtype=np.float64)
        self.coef_std = np.asarray(self.path.coef, dtype=np.float64)
        self.coef = self.coef_std / scale
        self.intercept = np.asarray(self.path.intercept, dtype=np.float64) - self.coef @ mean
        self.out = args.out

    def _file(self, name: str) -> str:
        return os.path.join(self.out, name)

    def write_tables(self) -> list[str]:
        files = [self._file("coef_path.csv")]
        rows = np.column_stack([self.alphas, self.intercept, self.coef])
        _write_csv(files[0], ["alpha", "intercept"] + self.names, rows)
        if self.cv is not None:
            cv = self.cv
            scores = np.asarray(cv.scores, dtype=np.float64)  # (n_folds, n_alphas)
            nnz = np.count_nonzero(self.coef, axis=1)
            rows = np.column_stack([self.alphas, nnz, cv.mean, cv.stderr, scores.T])
            header = ["alpha", "n_nonzero", f"mean_{cv.scoring}", f"stderr_{cv.scoring}"]
            header += [f"fold_{k + 1}" for k in range(scores.shape[0])]
            files.append(self._file("cv.csv"))
            _write_csv(files[-1], header, rows)
        return files

    def write_plots(self) -> tuple[list[str], str | None]:
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return [], "plots skipped: matplotlib is not installed (pip install 'jaxreg[plot]')"
        from .plot import plot_cv, plot_path

        what = _PENALTY_NAMES[self.args.penalty] + f", {self.args.loss} loss"
        files = []
        fig = Figure(figsize=(8, 4.8), layout="constrained")
        ax = plot_path(self.cv if self.cv is not None else self.path, self.names, ax=fig.add_subplot(),
                       title=f"{what}: coefficient path")
        if self.args.standardize:
            ax.set_ylabel("coefficient (standardized features)")
        files.append(self._file("path.png"))
        fig.savefig(files[-1], dpi=110)
        if self.cv is not None:
            fig = Figure(figsize=(8, 4.8), layout="constrained")
            plot_cv(self.cv, ax=fig.add_subplot(), title=f"{what}: cross-validation")
            files.append(self._file("cv.png"))
            fig.savefig(files[-1], dpi=110)
        return files, None

    def _at(self, index: int) -> dict[str, Any]:
        coef = self.coef[index]
        selected = [n for n, c in zip(self.names, coef) if c != 0]
        out = {
            "alpha": float(self.alphas[index]),
            "n_selected": len(selected),
            "selected": selected,
            "intercept": float(self.intercept[index]),
            "coef": {n: float(c) for n, c in zip(self.names, coef) if c != 0},
        }
        if self.cv is not None:
            out[f"mean_{self.cv.scoring}"] = float(self.cv.mean[index])
            out[f"stderr_{self.cv.scoring}"] = float(self.cv.stderr[index])
        return out

    def summary(self, files: list[str]) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {
            "data": self.source,
            "n_samples": int(self.data.X.shape[0]),
            "n_features": int(self.data.X.shape[1]),
            "target": self.data.target_name,
            "loss": a.loss,
            "penalty": a.penalty,
            "l1_ratio": (0.5 if a.l1_ratio is None else a.l1_ratio) if a.penalty == "elasticnet" else None,
            "standardized": a.standardize,
            "dtype": "float32" if a.float32 else "float64",
            "n_alphas": int(self.alphas.size),
            "alpha_max": float(self.alphas[0]),
            "alpha_min_of_grid": float(self.alphas[-1]),
            "converged": bool(np.all(np.asarray(self.path.converged))),
        }
        if self.cv is not None:
            cv = self.cv
            out.update(cv_folds=a.cv, seed=a.seed, scoring=cv.scoring, alpha_min=cv.alpha_min,
                       alpha_1se=cv.alpha_1se, at_alpha_min=self._at(cv.index_min),
                       at_alpha_1se=self._at(cv.index_1se))
        else:
            out["at_smallest_alpha"] = self._at(self.alphas.size - 1)
        out["files"] = [os.path.basename(f) for f in files] + ["summary.json", "summary.txt"]
        return out

    def summary_text(self, files: list[str]) -> str:
        a = self.args
        n, p = self.data.X.shape
        model = _PENALTY_NAMES[a.penalty]
        if a.penalty == "elasticnet":
            model += f" (l1_ratio {0.5 if a.l1_ratio is None else a.l1_ratio:g})"
        lines = [
            f"model      {model}, {a.loss} loss",
            f"data       {self.source}: {n} samples, {p} features, target {self.data.target_name!r}",
            "           " + ("features standardized for the fit (alphas refer to the standardized problem);"
                            " coefficients on the original scale" if a.standardize else "features as given"),
            f"alphas     {self.alphas.size} from {self.alphas[0]:.4g} down to {self.alphas[-1]:.4g}",
        ]
        if self.cv is not None:
            cv = self.cv
            lines.append(f"CV         {a.cv}-fold (shuffled, seed {a.seed}), scoring {cv.scoring}")
            rows = [("alpha_min", cv.index_min), ("alpha_1se", cv.index_1se)]
            for label, i in rows:
                d = self._at(i)
                lines.append(
                    f"{label:<10} {d['alpha']:<10.4g} {cv.scoring} {cv.mean[i]:.4g} ± {cv.stderr[i]:.2g}, "
                    f"{d['n_selected']} of {p} features selected"
                )
            cols = [i for _, i in rows]
            head = ["coefficients (original scale)", "at alpha_min", "at alpha_1se"]
        else:
            cols = [self.alphas.size - 1]
            head = ["coefficients (original scale)", "at the smallest alpha"]
        lines.append("")
        importance = self.coef_std[cols[0]]  # order rows by the size of the standardized coefficient
        lines += _coef_table(head, self.names, self.coef[cols].T, self.intercept[cols], importance)
        lines.append("")
        written = files + [self._file("summary.json"), self._file("summary.txt")]
        lines.append("wrote      " + ", ".join(written))
        return "\n".join(lines) + "\n"

    def write_summary(self, text: str, files: list[str]) -> None:
        with open(self._file("summary.json"), "w", encoding="utf-8") as f:
            json.dump(self.summary(files), f, indent=2)
            f.write("\n")
        with open(self._file("summary.txt"), "w", encoding="utf-8") as f:
            f.write(text)


def _coef_table(head: list[str], names: list[str], coef: np.ndarray, intercept: np.ndarray,
                importance: np.ndarray, max_rows: int = 30) -> list[str]:
    """Rows of the features nonzero in any column, by decreasing ``|importance|``, then the intercept."""
    keep = np.flatnonzero(np.any(coef != 0, axis=1))
    keep = keep[np.argsort(-np.abs(importance[keep]), kind="stable")]
    width = max([len(head[0])] + [len(names[j]) + 2 for j in keep])
    cw = max(len(h) for h in head[1:]) + 2
    lines = [head[0].ljust(width) + "".join(h.rjust(cw) for h in head[1:])]
    for j in keep[:max_rows]:
        lines.append(("  " + names[j]).ljust(width) + "".join(_num(c).rjust(cw) for c in coef[j]))
    if keep.size > max_rows:
        lines.append(f"  ... {keep.size - max_rows} more nonzero in coef_path.csv")
    if keep.size == 0:
        lines.append("  (all zero)")
    lines.append("  (intercept)".ljust(width) + "".join(_num(b).rjust(cw) for b in intercept))
    return lines


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.4g}"


def _write_csv(filename: str, header: list[str], rows: np.ndarray) -> None:
    with open(filename, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([_cell(float(v)) for v in row] for row in rows)


def _cell(v: float) -> str:
    """Integers (counts, exact zeros) without a decimal point; other values with full precision."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
