"""jaxreg.plot: the lines, labels and markers drawn for paths and cross-validation curves."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import jaxreg as jr  # noqa: E402
from jaxreg.plot import plot_cv, plot_path  # noqa: E402

NAMES = [f"f{j}" for j in range(6)]


@pytest.fixture(scope="module")
def cvr():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6))
    y = X @ np.array([3.0, -2.0, 1.0, 0.0, 0.0, 0.0]) + rng.standard_normal(80)
    return jr.cross_validate(X, y, jr.SquaredLoss(), jr.ElasticNet(l1_ratio=1.0), alphas=25, cv=4)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def vlines(ax):
    """Vertical marker lines by label prefix -> x position."""
    out = {}
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), float)
        if x.size == 2 and x[0] == x[1] and line.get_label().startswith("alpha_"):
            out[line.get_label().split(" ")[0]] = (x[0], line.get_label())
    return out


def test_plot_path_draws_one_labelled_line_per_feature(cvr):
    ax = plot_path(cvr.path, NAMES)
    lines = [ln for ln in ax.get_lines() if ln.get_label() in NAMES]
    assert sorted(ln.get_label() for ln in lines) == NAMES
    for ln in lines:
        j = NAMES.index(ln.get_label())
        np.testing.assert_allclose(ln.get_xdata(), cvr.path.alphas)
        np.testing.assert_allclose(ln.get_ydata(), np.asarray(cvr.path.coef)[:, j])
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["f0", "f1", "f2"]  # largest first
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo > hi  # alpha decreases to the right
    assert "alpha" in ax.get_xlabel() and ax.get_ylabel() == "coefficient"
    assert vlines(ax) == {}  # nothing to mark on a bare PathResult


def test_plot_path_marks_cv_alphas_with_counts(cvr):
    ax = plot_path(cvr, NAMES, title="lasso")
    marks = vlines(ax)
    assert set(marks) == {"alpha_min", "alpha_1se"}
    assert marks["alpha_min"][0] == pytest.approx(cvr.alpha_min)
    assert marks["alpha_1se"][0] == pytest.approx(cvr.alpha_1se)
    nnz = int(np.count_nonzero(cvr.coef_1se))
    assert f"({nnz} nonzero)" in marks["alpha_1se"][1]
    assert ax.get_title() == "lasso"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("alpha_min = ") for t in legend)
    assert any(t.startswith("alpha_1se = ") for t in legend)


def test_plot_path_top_axis_counts_nonzeros(cvr):
    ax = plot_path(cvr.path, NAMES)
    (top,) = [c for c in ax.child_axes if c.get_xlabel() == "nonzero coefficients"]
    labels = [int(t.get_text()) for t in top.get_xticklabels()]
    assert labels[0] == 0 and labels[-1] == int(np.count_nonzero(np.asarray(cvr.path.coef)[-1]))
    assert labels == sorted(labels)


def test_plot_path_against_l1_norm(cvr):
    ax = plot_path(cvr, NAMES, x="l1_norm")
    coef = np.asarray(cvr.path.coef)
    l1 = np.abs(coef).sum(axis=1)
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "f0")
    np.testing.assert_allclose(line.get_xdata(), l1)
    assert ax.get_xscale() == "linear" and "L1 norm" in ax.get_xlabel()
    x_min = vlines(ax)["alpha_min"][0]
    assert x_min == pytest.approx(l1[cvr.index_min])


def test_plot_path_explicit_marks_and_max_labels(cvr):
    ax = plot_path(cvr.path, NAMES, alpha_min=0.1, max_labels=2)
    assert vlines(ax)["alpha_min"][0] == pytest.approx(0.1)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["f0", "f1"] and "f2" not in legend
    assert "+4 more" in ax.get_legend().get_title().get_text()
    grey = [ln for ln in ax.get_lines() if ln.get_label().startswith("_") and len(ln.get_xdata()) == 25]
    assert len(grey) == 4


def test_plot_cv_error_bars_and_selected_alphas(cvr):
    ax = plot_cv(cvr)
    (bars,) = ax.containers
    data_line = bars.lines[0]
    np.testing.assert_allclose(data_line.get_xdata(), cvr.alphas)
    np.testing.assert_allclose(data_line.get_ydata(), cvr.mean)
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], 2 * np.asarray(cvr.stderr))
    marks = vlines(ax)
    assert marks["alpha_min"][0] == pytest.approx(cvr.alpha_min)
    assert marks["alpha_1se"][0] == pytest.approx(cvr.alpha_1se)
    threshold = next(ln for ln in ax.get_lines() if ln.get_label() == "best mean + 1 s.e.")
    i = cvr.index_min
    assert threshold.get_ydata()[0] == pytest.approx(cvr.mean[i] + cvr.stderr[i])
    assert ax.get_ylabel() == "mean squared error (4-fold CV)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "mean ± 1 s.e. over 4 folds"


def test_plots_of_a_grid_of_l1_ratios():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    y = X[:, 0] + 0.5 * rng.standard_normal(60)
    cvr = jr.cross_validate(X, y, jr.SquaredLoss(), jr.ElasticNet(), l1_ratios=[0.5, 1.0], alphas=10, cv=3)
    h = cvr.index_min[0]
    ax = plot_path(cvr)
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "x0")
    np.testing.assert_allclose(line.get_xdata(), np.asarray(cvr.alphas)[h])
    assert set(vlines(ax)) == {"alpha_min", "alpha_1se"}
    other = plot_path(cvr, l1_ratio_index=1 - h)
    assert vlines(other) == {}  # alpha_min belongs to the other l1_ratio
    ax = plot_cv(cvr, l1_ratio_index=1 - h)
    assert ax.get_title() == f"l1_ratio = {float(np.asarray(cvr.l1_ratios)[1 - h]):.3g}"
    with pytest.raises(ValueError, match="l1_ratio_index"):
        plot_path(cvr.path)


def test_draws_on_a_given_axes_and_saves(cvr, tmp_path):
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_path(cvr, NAMES, ax=a) is a
    assert plot_cv(cvr, ax=b) is b
    fig.savefig(tmp_path / "both.png")
    assert (tmp_path / "both.png").stat().st_size > 1000


def test_bad_arguments(cvr):
    with pytest.raises(ValueError, match="x must be"):
        plot_path(cvr, x="alpha")
    with pytest.raises(ValueError, match="3 feature names for 6 features"):
        plot_path(cvr, NAMES[:3])
    with pytest.raises(TypeError, match="needs a CVResult"):
        plot_cv(cvr.path)


def test_missing_matplotlib_says_how_to_install(cvr, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install jaxreg\[plot\]"):
        plot_path(cvr)
