"""Plots of regularization paths and cross-validation curves (needs matplotlib: ``pip install jaxreg[plot]``).

Both functions draw on a given ``ax`` or on a new figure, and return the Axes. The alpha axis is
logarithmic and decreasing to the right, so that models grow more complex from left to right, the
same direction as ``x="l1_norm"``; the top axis counts the nonzero coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_path", "plot_cv"]

_SCORE_LABELS = {
    "mse": "mean squared error",
    "mae": "mean absolute error",
    "deviance": "deviance",
    "misclassification": "misclassification rate",
    "auc": "AUC",
}
_MARKS = {"alpha_min": ("-.", "black"), "alpha_1se": (":", "black")}


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("jaxreg.plot needs matplotlib: pip install jaxreg[plot]") from None
    return matplotlib


def _new_axes(ax: Any, figsize: tuple[float, float]) -> Any:
    _matplotlib()
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _is_cv(result: Any) -> bool:
    return hasattr(result, "alpha_min") and hasattr(result, "path")


def _select(
    alphas: np.ndarray, values: np.ndarray, index: int | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """One path out of a grid of l1_ratios: ``alphas (H, A)`` -> ``(A,)``."""
    if alphas.ndim == 1:
        return alphas, values
    if index is None:
        raise ValueError(f"{what} has a grid of {alphas.shape[0]} l1_ratios: pass l1_ratio_index")
    return alphas[index], values[index]


def _alpha_axis(ax: Any, alphas: np.ndarray) -> None:
    if np.any(alphas <= 0):
        raise ValueError("alphas must be positive for a log-scale axis; use x='l1_norm'")
    ax.set_xscale("log")
    lo, hi = float(alphas.min()), float(alphas.max())
    pad = (hi / lo) ** 0.02 if hi > lo else 1.5
    ax.set_xlim(hi * pad, lo / pad)  # decreasing: simpler models on the left
    ax.set_xlabel("alpha (log scale, decreasing)")


def _nonzero_axis(ax: Any, x: np.ndarray, coef: np.ndarray, log: bool) -> None:
    """Top axis: the number of nonzero coefficients at about 7 evenly spaced points of the path."""
    counts = np.count_nonzero(coef.reshape(coef.shape[0], -1), axis=1)
    top = ax.secondary_xaxis("top")
    u = np.log(x) if log else x
    targets = np.linspace(u.min(), u.max(), 7)
    idx = np.unique(np.argmin(np.abs(u[:, None] - targets[None]), axis=0))
    top.set_xticks(x[idx], [str(c) for c in counts[idx]])
    top.minorticks_off()
    top.set_xlabel("nonzero coefficients")


def _mark(ax: Any, name: str, value: float, x: float, alphas: np.ndarray, coef: np.ndarray) -> None:
    """A vertical line at ``x`` for ``alpha = value``; the label counts the nonzeros there."""
    style, color = _MARKS[name]
    i = int(np.argmin(np.abs(np.log(alphas) - np.log(value)))) if value > 0 else int(np.argmin(alphas))
    nnz = np.count_nonzero(coef[i])
    label = f"{name} = {value:.3g} ({nnz} nonzero)"
    ax.axvline(x, linestyle=style, color=color, linewidth=1.2, label=label, zorder=1)


def plot_path(
    result: Any,
    feature_names: Sequence[str] | None = None,
    *,
    x: str = "log_alpha",
    alpha_min: float | None = None,
    alpha_1se: float | None = None,
    l1_ratio_index: int | None = None,
    max_labels: int = 12,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Coefficients along a regularization path, one line per feature.

    Args:
      result: a :class:`~jaxreg.PathResult`, or a :class:`~jaxreg.CVResult` (its full-data ``path``
        is drawn and its ``alpha_min`` and ``alpha_1se`` are marked).
      feature_names: ``n_features`` names for the legend; default ``x0, x1, ...``.
      x: ``"log_alpha"`` (alpha on a log axis, decreasing to the right) or ``"l1_norm"``
        (``sum_j |coef_j|`` at each alpha, as in the LARS paper).
      alpha_min, alpha_1se: alphas to mark with vertical lines (default: those of a CVResult).
      l1_ratio_index: which path of a grid of l1_ratios to draw (default for a CVResult: the
        l1_ratio of ``alpha_min``).
      max_labels: the legend names this many features, those with the largest ``max |coef|``;
        the others are drawn thin and grey.
      ax: matplotlib Axes to draw on; default: a new figure.
      title: axes title.

    Returns:
      The matplotlib Axes.

    Example:
      >>> import matplotlib; matplotlib.use("Agg")
      >>> import numpy as np, jaxreg as jr
      >>> from jaxreg.plot import plot_path
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((40, 8)); y = X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(40)
      >>> ax = plot_path(jr.path(X, y, alphas=20), [f"x{j}" for j in range(8)], max_labels=2)
      >>> sorted(t.get_text() for t in ax.get_legend().get_texts())
      ['x0', 'x1']
    """
    if x not in ("log_alpha", "l1_norm"):
        raise ValueError(f"x must be 'log_alpha' or 'l1_norm', got {x!r}")
    marks = {"alpha_min": alpha_min, "alpha_1se": alpha_1se}
    path = result
    if _is_cv(result):
        path = result.path
        if result.l1_ratios is not None:
            h_min = result.index_min[0]
            l1_ratio_index = h_min if l1_ratio_index is None else l1_ratio_index
            same = l1_ratio_index == h_min
        else:
            same = True
        if same:
            marks = {k: getattr(result, k) if v is None else v for k, v in marks.items()}
    alphas, coef = _select(np.asarray(path.alphas), np.asarray(path.coef), l1_ratio_index, "the path")
    if coef.ndim != 2:
        raise ValueError(f"plot_path draws one coefficient per feature; got coef of shape {coef.shape}")
    p = coef.shape[1]
    names = [f"x{j}" for j in range(p)] if feature_names is None else [str(n) for n in feature_names]
    if len(names) != p:
        raise ValueError(f"{len(names)} feature names for {p} features")
    ax = _new_axes(ax, (7.5, 4.5))

    order = np.argsort(-np.max(np.abs(coef), axis=0), kind="stable")
    labelled = set(order[:max_labels].tolist())
    colors = _feature_colors(p, order[:max_labels])
    xs = alphas if x == "log_alpha" else np.sum(np.abs(coef), axis=1)
    ax.axhline(0.0, color="0.75", linewidth=0.8, zorder=0)
    for j in range(p):
        if j not in labelled:
            ax.plot(xs, coef[:, j], color="0.7", linewidth=0.7, zorder=1)
    for j in order[:max_labels]:
        ax.plot(xs, coef[:, j], color=colors[j], linewidth=1.6, label=names[j], zorder=2)
    if x == "log_alpha":
        _alpha_axis(ax, alphas)
    else:
        ax.set_xlabel(r"L1 norm of the coefficients, $\sum_j |w_j|$")
    for name, value in marks.items():
        if value is not None:
            at = float(value) if x == "log_alpha" else _l1_at(alphas, xs, float(value))
            _mark(ax, name, float(value), at, alphas, coef)
    _nonzero_axis(ax, xs, coef, log=x == "log_alpha")
    ax.set_ylabel("coefficient")
    if title:
        ax.set_title(title)
    extra = "" if p <= max_labels else f"\n(+{p - max_labels} more, grey)"
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False,
        title=f"feature{extra}", title_fontsize="small",
    )  # fmt: skip
    return ax


def _feature_colors(n_features: int, labelled: np.ndarray) -> dict[int, Any]:
    """Color of each labelled feature: by feature index when there are at most 20 features (so that
    a feature has the same color in every panel of a figure), else by rank."""
    import matplotlib

    by_index = n_features <= 20
    n = n_features if by_index else len(labelled)
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return {int(j): cmap((int(j) if by_index else r) % cmap.N) for r, j in enumerate(labelled)}


def _l1_at(alphas: np.ndarray, l1: np.ndarray, alpha: float) -> float:
    """The L1 norm of the path at ``alpha``, interpolated in log(alpha)."""
    order = np.argsort(alphas)
    return float(np.interp(np.log(alpha), np.log(alphas[order]), l1[order]))


def plot_cv(
    cv_result: Any,
    *,
    l1_ratio_index: int | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Cross-validated score along the path: mean over folds with one-standard-error bars.

    ``alpha_min`` (best mean) and ``alpha_1se`` (the largest alpha within one standard error of it)
    are marked with vertical lines, and the one-standard-error threshold with a horizontal line.

    Args:
      cv_result: a :class:`~jaxreg.CVResult`.
      l1_ratio_index: which l1_ratio of a grid to draw (default: the one of ``alpha_min``).
      ax: matplotlib Axes to draw on; default: a new figure.
      title: axes title.

    Returns:
      The matplotlib Axes.

    Example:
      >>> import matplotlib; matplotlib.use("Agg")
      >>> import numpy as np, jaxreg as jr
      >>> from jaxreg.plot import plot_cv
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((60, 10)); y = X[:, 0] + 0.5 * rng.standard_normal(60)
      >>> ax = plot_cv(jr.cross_validate(X, y, alphas=20, cv=3))
      >>> ax.get_ylabel()
      'mean squared error (3-fold CV)'
    """
    r = cv_result
    if not _is_cv(r):
        raise TypeError(f"plot_cv needs a CVResult, got {type(r).__name__}")
    h_min = r.index_min[0] if r.l1_ratios is not None else None
    h = h_min if l1_ratio_index is None else l1_ratio_index
    alphas = np.asarray(r.alphas)
    _, mean = _select(alphas, np.asarray(r.mean), h, "cv_result")
    _, stderr = _select(alphas, np.asarray(r.stderr), h, "cv_result")
    alphas, coef = _select(alphas, np.asarray(r.path.coef), h, "cv_result")
    n_folds = np.asarray(r.scores).shape[0]
    ax = _new_axes(ax, (7.5, 4.5))
    ax.errorbar(
        alphas, mean, yerr=stderr, fmt="o", markersize=3.5, color="tab:red", ecolor="0.6",
        elinewidth=1.0, capsize=2, label=f"mean ± 1 s.e. over {n_folds} folds", zorder=2,
    )  # fmt: skip
    _alpha_axis(ax, alphas)
    if h == h_min:
        i = r.index_min[-1] if r.l1_ratios is not None else r.index_min
        sign = -1.0 if r.scoring == "auc" else 1.0
        ax.axhline(
            mean[i] + sign * stderr[i], color="tab:blue", linestyle="--", linewidth=1.0,
            label="best mean " + ("-" if sign < 0 else "+") + " 1 s.e.", zorder=1,
        )  # fmt: skip
        _mark(ax, "alpha_min", r.alpha_min, r.alpha_min, alphas, coef)
        _mark(ax, "alpha_1se", r.alpha_1se, r.alpha_1se, alphas, coef)
    _nonzero_axis(ax, alphas, coef, log=True)
    ax.set_ylabel(f"{_SCORE_LABELS.get(r.scoring, r.scoring)} ({n_folds}-fold CV)")
    if title is None and r.l1_ratios is not None:
        title = f"l1_ratio = {float(np.asarray(r.l1_ratios)[h]):.3g}"
    if title:
        ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    first = labels.index(next(lab for lab in labels if lab.startswith("mean")))
    order = [first] + [i for i in range(len(labels)) if i != first]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="small", frameon=False)
    return ax
