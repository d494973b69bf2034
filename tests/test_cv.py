"""jr.cross_validate against scikit-learn's LassoCV on the same folds and alphas."""

import os
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LassoCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

import jaxreg as jr
from jaxreg.cv import fold_masks


def make(n=60, p=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[:4] = [2.0, -1.5, 1.0, 0.5]
    return X, X @ w + rng.standard_normal(n)


def test_same_as_lassocv():
    X, y = make()
    kf = KFold(5)
    ref = LassoCV(cv=kf, alphas=25, tol=1e-10, max_iter=200_000).fit(X, y)
    res = jr.cross_validate(X, y, alphas=ref.alphas_, cv=kf, tol=1e-10)
    assert res.alpha_min == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(res.scores.T, ref.mse_path_, rtol=1e-4)
    np.testing.assert_allclose(res.coef, ref.coef_, atol=1e-6)
    assert res.alpha_1se >= res.alpha_min
    assert bool(np.all(res.fold_converged))


def test_one_standard_error_rule():
    X, y = make(seed=1)
    res = jr.cross_validate(X, y, alphas=30, cv=5)
    i_min, i_1se = res.index_min, res.index_1se
    assert i_1se <= i_min
    assert res.mean[i_1se] <= res.mean[i_min] + res.stderr[i_min]
    if i_1se > 0:
        assert res.mean[i_1se - 1] > res.mean[i_min] + res.stderr[i_min]
    np.testing.assert_allclose(res.stderr, res.scores.std(0, ddof=1) / np.sqrt(5))
    np.testing.assert_allclose(res.coef_1se, res.path.coef[i_1se])


def test_fold_ids_and_int_cv_agree():
    X, y = make(seed=2)
    ids = np.repeat(np.arange(4), 15)
    a = jr.cross_validate(X, y, alphas=10, cv=ids)
    b = jr.cross_validate(X, y, alphas=10, cv=4)
    np.testing.assert_allclose(a.scores, b.scores)


def test_fold_masks():
    train, test = fold_masks(3, 8)
    assert test.sum(1).tolist() == [3, 3, 2]
    assert np.all(train ^ test)
    tr, te = fold_masks(KFold(4, shuffle=True, random_state=0), 8)
    assert np.all(te.sum(0) == 1)
    _, te2 = fold_masks(4, 20, shuffle=True, random_state=0)
    _, te3 = fold_masks(4, 20, shuffle=True, random_state=0)
    np.testing.assert_array_equal(te2, te3)
    with pytest.raises(ValueError, match="cv"):
        fold_masks(1, 10)
    with pytest.raises(ValueError, match="fold ids"):
        fold_masks(np.zeros(5), 10)


def test_sample_weight_scores_are_weighted_means():
    X, y = make(seed=3)
    sw = np.random.default_rng(0).integers(1, 4, len(y)).astype(float)
    ids = np.arange(len(y)) % 3
    res = jr.cross_validate(X, y, alphas=[0.3, 0.1], cv=ids, sample_weight=sw, tol=1e-10)
    for k in range(3):
        tr, te = ids != k, ids == k
        fit = jr.solve(X[tr], y[tr], penalty=jr.L1(0.1), sample_weight=sw[tr], tol=1e-10)
        pred = X[te] @ np.asarray(fit.coef) + float(fit.intercept)
        mse = np.average((y[te] - pred) ** 2, weights=sw[te])
        assert res.scores[k, 1] == pytest.approx(mse, rel=1e-6)


def test_logistic_scorings():
    X, y = make(seed=4)
    yb = (y > 0).astype(float)
    ids = np.arange(len(y)) % 3
    alphas = [0.05, 0.01]
    res = {s: jr.cross_validate(X, yb, jr.LogisticLoss(), alphas=alphas, cv=ids, scoring=s, tol=1e-10)
           for s in ("deviance", "misclassification", "auc")}
    for k in range(3):
        tr, te = ids != k, ids == k
        fit = jr.solve(X[tr], yb[tr], jr.LogisticLoss(), jr.L1(0.01), tol=1e-10)
        z = X[te] @ np.asarray(fit.coef) + float(fit.intercept)
        prob = 1 / (1 + np.exp(-z))
        dev = -2 * np.mean(yb[te] * np.log(prob) + (1 - yb[te]) * np.log(1 - prob))
        assert res["deviance"].scores[k, 1] == pytest.approx(dev, rel=1e-6)
        assert res["misclassification"].scores[k, 1] == pytest.approx(np.mean((z > 0) != yb[te]))
        assert res["auc"].scores[k, 1] == pytest.approx(roc_auc_score(yb[te], z), rel=1e-10)
    with pytest.raises(ValueError, match="scoring"):
        jr.cross_validate(X, yb, jr.LogisticLoss(), alphas=alphas, cv=3, scoring="r2")


def test_elastic_net_grid_and_edge_warning():
    X, y = make(seed=5)
    res = jr.cross_validate(X, y, penalty=jr.ElasticNet(), l1_ratios=[0.2, 1.0], alphas=12, cv=3)
    assert res.scores.shape == (3, 2, 12)
    h, a = res.index_min
    assert res.l1_ratio == [0.2, 1.0][h]
    assert res.mean[h, a] == res.mean.min()
    with pytest.warns(UserWarning, match="edge|largest|smallest"):
        jr.cross_validate(X, y, alphas=[10.0, 5.0], cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jr.cross_validate(X, y, alphas=20, cv=3)


def test_non_finite_scores_are_never_chosen():
    from jaxreg.cv import _choose, _summarize

    scores = np.array([[1.0, 0.5, np.nan], [1.1, 0.6, 0.1], [0.9, 0.4, 0.2]])[:, None, :]
    grid = np.array([[1.0, 0.1, 0.01]])
    full = jr.PathResult(grid[0], None, np.zeros((3, 2)), np.zeros(3), np.zeros(3, int), np.zeros(3), np.ones(3, bool))
    picks = (np.zeros(2), 0.0, np.zeros(2), 0.0)
    res = _summarize(scores, grid, None, "mse", full, np.ones((3, 1, 3), bool), _choose(scores, False), picks)
    assert res.index_min == 1 and res.alpha_min == 0.1
    np.testing.assert_allclose(res.mean[:2], [1.0, 0.5])
    assert np.isnan(res.mean[2])
    nan = np.full((3, 1, 3), np.nan)
    with pytest.raises(ValueError, match="non-finite"):
        _summarize(nan, grid, None, "mse", full, np.ones((3, 1, 3), bool), _choose(nan, False), picks)


def test_the_choice_of_alpha_min_and_alpha_1se():
    """The best mean, and the largest alpha (the first) within one standard error of it; ``auc`` is
    maximized.  Against the same rule in NumPy."""
    from jaxreg.cv import _choose

    scores = np.array([[0.9, 0.52, 0.5, 0.7], [0.8, 0.55, 0.45, 0.6], [1.0, 0.5, 0.55, 0.5]])[:, None, :]
    for maximize in (False, True):
        mean, stderr, h, a, a_1se = map(np.asarray, _choose(scores, maximize))
        sign = -1.0 if maximize else 1.0
        ref_mean = scores.mean(0)
        ref_err = scores.std(0, ddof=1) / np.sqrt(3)
        best = np.argmin(sign * ref_mean[0])
        np.testing.assert_allclose(mean, ref_mean)
        np.testing.assert_allclose(stderr, ref_err)
        assert (int(h), int(a)) == (0, best)
        within = sign * ref_mean[0] <= sign * ref_mean[0, best] + ref_err[0, best]
        assert int(a_1se) == np.nonzero(within)[0].min()
    assert [int(i) for i in _choose(scores, False)[3:]] == [2, 1]  # a_1se below a: a larger alpha
    assert [int(i) for i in _choose(scores, True)[3:]] == [0, 0]


def test_folds_that_cannot_be_fit_or_scored_are_named():
    """Checked once before compiling: the fold (index along ``scores``) and the missing class are named."""
    X = np.random.default_rng(6).standard_normal((20, 3))
    ids = np.arange(20) % 4  # fold k holds out samples k, k + 4, ...
    yb = (ids == 2).astype(float)  # class 1 lives in fold 2 only
    with pytest.raises(ValueError, match=r"training set of cross-validation fold 2 \(of 4\) has no sample of "
                                         r"class\(es\) \[1\]; LogisticLoss"):
        jr.cross_validate(X, yb, jr.LogisticLoss(), alphas=3, cv=ids)
    # a class left out of training only by zero weights
    y3 = np.arange(20) % 3  # every fold holds every class
    sw = np.where((y3 == 1) & (ids != 1), 0.0, 1.0)  # but only fold 1 gives class 1 a positive weight
    with pytest.raises(ValueError, match=r"fold 1 \(of 4\) has no sample of class\(es\) \[1\]; Multinomial"):
        jr.cross_validate(X, y3, jr.MultinomialLoss(), alphas=3, cv=ids, sample_weight=sw)
    with pytest.raises(ValueError, match=r"fold 3 \(of 4\) has no held-out sample with positive weight"):
        jr.cross_validate(X, X[:, 0], alphas=3, cv=ids, sample_weight=(ids != 3).astype(float))
    with pytest.raises(ValueError, match=r"fold 0 \(of 2\) has no training sample with positive weight"):
        jr.cross_validate(X, X[:, 0], alphas=3, cv=ids % 2, sample_weight=(ids % 2 == 0).astype(float))
    counts = np.where(ids == 0, 1.0, 0.0)  # Poisson: fold 0 trains on zeros only
    with pytest.raises(ValueError, match=r"training set of cross-validation fold 0 \(of 4\): PoissonLoss: y"):
        jr.cross_validate(X, counts, jr.PoissonLoss(), alphas=3, cv=ids)
    yb = (ids % 2 == 0).astype(float)  # every training set holds both classes, every held-out set one
    with pytest.raises(ValueError, match=r"held-out set of cross-validation fold 0 \(of 4\) holds a single"):
        jr.cross_validate(X, yb, jr.LogisticLoss(), alphas=3, cv=ids, scoring="auc")
    stratified = jr.cross_validate(X, yb, jr.LogisticLoss(), alphas=3, cv=np.arange(20) % 5, scoring="auc")
    assert np.all(np.isfinite(stratified.scores))


@pytest.mark.parametrize("case", ["lasso", "logistic", "enet"])
def test_paths_on_host_threads_give_what_one_program_gives(case):
    """``threads`` fit the independent paths (full data, folds, l1_ratios) one per call of one compiled
    program on host threads; ``threads=1`` fits them all in one program.  The solutions, scores and
    choices agree: every path is solved by the same code, only the paths' order differs.  3 threads
    for 5 paths (the full data and 4 folds) leave them unevenly split."""
    X, y = make(seed=8)
    kw = {"alphas": 15, "cv": 4, "tol": 1e-8}
    if case == "logistic":
        y, kw["loss"] = (y > np.median(y)).astype(float), jr.LogisticLoss()
    elif case == "enet":
        kw["penalty"], kw["l1_ratios"] = jr.ElasticNet(), [0.3, 1.0]
    one = jr.cross_validate(X, y, threads=1, **kw)
    for threads in (2, 3):
        res = jr.cross_validate(X, y, threads=threads, **kw)
        np.testing.assert_allclose(res.scores, one.scores, rtol=1e-10)
        np.testing.assert_allclose(res.path.coef, one.path.coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.path.gap, one.path.gap, rtol=1e-8, atol=1e-15)
        assert (res.index_min, res.index_1se) == (one.index_min, one.index_1se)
        np.testing.assert_allclose(res.coef, one.coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(res.fold_converged, one.fold_converged)
        assert bool(np.all(res.fold_converged)) and bool(np.all(res.path.converged))


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "all"])
def test_threads_must_be_a_positive_int_or_auto(threads):
    """A count below 1 or another string is a ValueError, another type a TypeError, before any fit."""
    X, y = make()
    error = ValueError if threads in (0, -1, "all") else TypeError
    with pytest.raises(error, match="threads must be a positive int or 'auto'"):
        jr.cross_validate(X, y, alphas=5, cv=3, threads=threads)
    with pytest.raises(error, match="threads must be a positive int or 'auto'"):
        jr.path(X, y, alphas=5, threads=threads)


def test_host_threads_run_under_the_callers_x64_context():
    """``jax.enable_x64`` is local to a thread: the threads that fit the paths take the caller's.  The
    ``jaxreg`` command fits in float64 under it, in a process where x64 is off: without this its
    threads had fit float32 paths from float64 data, with JAX warning that it truncates float64."""
    import subprocess
    import sys

    script = """
import warnings, numpy as np, jax
warnings.simplefilter("error")
import jaxreg as jr
rng = np.random.default_rng(9)
X = rng.standard_normal((60, 40)); y = X[:, 0] + rng.standard_normal(60)
with jax.enable_x64(True):
    one = jr.cross_validate(X, y, alphas=8, cv=3, threads=1, tol=1e-10)
    res = jr.cross_validate(X, y, alphas=8, cv=3, threads=2, tol=1e-10)
assert not jax.config.jax_enable_x64
assert res.coef.dtype == np.float64 and res.path.coef.dtype == np.float64, res.coef.dtype
np.testing.assert_allclose(res.scores, one.scores, rtol=1e-10)
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
