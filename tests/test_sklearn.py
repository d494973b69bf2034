"""jaxreg.sklearn: scikit-learn's estimator checks, agreement with scikit-learn, compile-once behaviour.

Data sets stay at most 256 x 16 so that every fit here shares the compiled programs of one padded
shape (see ``jaxreg.sklearn``).
"""

import re
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model as sk
from sklearn.base import clone, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    parametrize_with_checks,
)

import jaxreg as jr
from jaxreg.sklearn import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LassoCV,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
)

TIGHT = 1e-13  # duality-gap tolerance of the reference comparisons
ATOL = 1e-6
# A gap of 1e-13 bounds a fold's coefficients only to about sqrt(gap / curvature); held-out errors along
# the whole path agree to 1e-5 relative, the chosen alpha exactly, and its coefficients to ATOL.
MSE_RTOL = 1e-5


# -- scikit-learn's estimator checks -----------------------------------------------------------

# Default parameters, with cv=3 for the CV estimators as in scikit-learn's own test configuration.
# LogisticRegressionCV also gets max_iter=1000 (scikit-learn's configuration uses max_iter=5): its
# default grid reaches C = 1e4, which on the checks' separable data sets never converges and would
# otherwise run 10000 iterations per fit.
CHECKED = [
    Lasso(),
    ElasticNet(),
    Ridge(),
    LogisticRegression(),
    LassoCV(cv=3),
    ElasticNetCV(cv=3),
    LogisticRegressionCV(cv=3, max_iter=1000),
]

# Checks expected to fail, per estimator, with the reason. Every check scikit-learn's counterpart
# passes also passes here, so the list is empty.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


@parametrize_with_checks(
    CHECKED, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {})
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# -- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reg():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    w = np.array([2.0, -1.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5])
    y = X @ w + 1.0 + 0.5 * rng.standard_normal(60)
    sw = rng.integers(0, 4, 60).astype(float)
    return X, y, sw


@pytest.fixture(scope="module")
def clf():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 5))
    z = X @ np.array([1.0, -1.0, 0.5, 0.0, 0.0])
    y2 = (z + 0.8 * rng.standard_normal(90) > 0).astype(int)
    y3 = np.digitize(z + 0.8 * rng.standard_normal(90), [-0.6, 0.6])
    sw = rng.uniform(0.2, 2.0, 90)
    return X, y2, y3, sw


def _compiles() -> int:
    """Programs compiled so far by the jitted entry points behind the estimators."""
    fns = (
        sys.modules["jaxreg.solvers"]._solve_batched,
        sys.modules["jaxreg.path"]._path_program,
        sys.modules["jaxreg.path"]._alpha_max,
        sys.modules["jaxreg.cv"]._cv_program,
    )
    return sum(f._cache_size() for f in fns)


# -- agreement with scikit-learn ---------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (Lasso(alpha=0.1), sk.Lasso(alpha=0.1)),
        (Lasso(alpha=0.1, positive=True), sk.Lasso(alpha=0.1, positive=True)),
        (Lasso(alpha=0.05, fit_intercept=False), sk.Lasso(alpha=0.05, fit_intercept=False)),
        (ElasticNet(alpha=0.2, l1_ratio=0.3), sk.ElasticNet(alpha=0.2, l1_ratio=0.3)),
        (
            ElasticNet(alpha=0.2, l1_ratio=0.6, positive=True),
            sk.ElasticNet(alpha=0.2, l1_ratio=0.6, positive=True),
        ),
        (Ridge(alpha=3.0), sk.Ridge(alpha=3.0)),
        (Ridge(alpha=3.0, positive=True), sk.Ridge(alpha=3.0, positive=True)),
        (Ridge(alpha=0.5, fit_intercept=False), sk.Ridge(alpha=0.5, fit_intercept=False)),
    ],
    ids=lambda e: repr(e) if isinstance(e, (Lasso, ElasticNet, Ridge)) else "",
)
def test_regressors_match_sklearn(reg, ours, theirs, weighted):
    X, y, sw = reg
    sw = sw if weighted else None
    ours = clone(ours).set_params(tol=TIGHT).fit(X, y, sample_weight=sw)
    extra = {} if isinstance(theirs, sk.Ridge) and not theirs.positive else {"max_iter": 100_000}
    theirs = clone(theirs).set_params(tol=1e-12, **extra).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=ATOL)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=ATOL)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=ATOL)
    # tol's unit is the variance of y with the sample weights
    var = np.cov(y, aweights=sw, bias=True) if weighted else np.var(y)
    assert isinstance(ours.n_iter_, int) and ours.dual_gap_ <= TIGHT * var + 1e-15


def test_lasso_dual_gap_in_sklearn_units(reg):
    """``dual_gap_`` is the gap of the objective ``1/(2n)||y - Xw - b||^2 + alpha |w|_1``, as sklearn."""
    X, y, _ = reg
    model = Lasso(alpha=0.1, tol=1e-3).fit(X, y)
    ref = sk.Lasso(alpha=0.1, tol=1e-14, max_iter=100_000).fit(X, y)

    def objective(coef, intercept):
        r = y - X @ coef - intercept
        return 0.5 * np.mean(r**2) + 0.1 * np.abs(coef).sum()

    suboptimality = objective(model.coef_, model.intercept_) - objective(ref.coef_, ref.intercept_)
    assert 0.0 <= suboptimality <= model.dual_gap_ + 1e-12


def test_multioutput_regression(reg):
    X, y, sw = reg
    Y = np.stack([y, -2.0 * y + X[:, 2]], axis=1)
    for ours, theirs in [
        (Lasso(alpha=0.1), sk.Lasso(alpha=0.1)),
        (Ridge(alpha=[1.0, 4.0]), sk.Ridge(alpha=[1.0, 4.0])),
    ]:
        a = ours.set_params(tol=TIGHT).fit(X, Y, sample_weight=sw)
        b = theirs.set_params(tol=1e-12).fit(X, Y, sample_weight=sw)
        assert a.coef_.shape == (2, 8) and a.intercept_.shape == (2,) and a.predict(X).shape == (60, 2)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=ATOL)
        np.testing.assert_allclose(a.predict(X), b.predict(X), atol=ATOL)


@pytest.mark.parametrize("multinomial", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "kw", [{"C": 0.3}, {"C": 10.0, "fit_intercept": False}, {"C": 1.0, "class_weight": "balanced"}]
)
def test_logistic_regression_matches_sklearn(clf, multinomial, weighted, kw):
    X, y2, y3, sw = clf
    y = y3 if multinomial else y2
    sw = sw if weighted else None
    ours = LogisticRegression(tol=TIGHT, **kw).fit(X, y, sample_weight=sw)
    theirs = sk.LogisticRegression(tol=1e-12, max_iter=10_000, **kw).fit(X, y, sample_weight=sw)
    assert ours.coef_.shape == theirs.coef_.shape and ours.intercept_.shape == theirs.intercept_.shape
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=ATOL)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=ATOL)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), atol=ATOL)
    np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), atol=ATOL)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.n_iter_.shape == (1,) and ours.n_iter_.dtype == np.int32


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("multinomial", [False, True])
def test_logistic_regression_l1_ratio_matches_saga(clf, multinomial, weighted):
    X, y2, y3, sw = clf
    y = y3 if multinomial else y2
    sw = sw if weighted else None
    ours = LogisticRegression(C=0.5, l1_ratio=0.7, tol=TIGHT).fit(X, y, sample_weight=sw)
    theirs = sk.LogisticRegression(C=0.5, l1_ratio=0.7, solver="saga", tol=1e-14, max_iter=1_000_000)
    theirs.fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=ATOL)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=ATOL)
    np.testing.assert_array_equal(ours.coef_ == 0.0, theirs.coef_ == 0.0)


def test_logistic_regression_without_penalty(clf):
    X, _, y3, _ = clf
    ours = LogisticRegression(C=np.inf, tol=TIGHT).fit(X, y3)
    theirs = sk.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y3)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=ATOL)
    np.testing.assert_allclose(ours.intercept_.sum(), 0.0, atol=1e-10)


def test_logistic_regression_string_labels(clf):
    X, y2, y3, _ = clf
    labels = np.array(["setosa", "versicolor", "virginica"])[y3]
    model = LogisticRegression().fit(X, labels)
    assert model.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert set(model.predict(X)) <= set(labels)
    assert LogisticRegression().fit(X, np.where(y2 == 1, "yes", "no")).coef_.shape == (1, 5)


@pytest.mark.parametrize("weighted", [False, True])
def test_lasso_cv_matches_sklearn(reg, weighted):
    X, y, sw = reg
    sw = sw if weighted else None
    cv = KFold(3, shuffle=True, random_state=0)
    ours = LassoCV(cv=cv, tol=TIGHT).fit(X, y, sample_weight=sw)
    theirs = sk.LassoCV(cv=cv, tol=1e-15, max_iter=100_000).fit(X, y, sample_weight=sw)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    assert ours.mse_path_.shape == theirs.mse_path_.shape == (100, 3)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-10)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=MSE_RTOL)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=ATOL)
    assert ours.l1_ratio_ == 1.0 and ours.n_iter_ >= 1


def test_lasso_cv_positive_matches_sklearn(reg):
    X, y, _ = reg
    ours = LassoCV(cv=3, positive=True, tol=TIGHT).fit(X, y)
    theirs = sk.LassoCV(cv=3, positive=True, tol=1e-15, max_iter=100_000).fit(X, y)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)
    assert np.all(ours.coef_ >= 0)


@pytest.mark.parametrize("l1_ratio", [0.4, [0.2, 0.7, 1.0]])
def test_elastic_net_cv_matches_sklearn(reg, l1_ratio):
    X, y, sw = reg
    ours = ElasticNetCV(l1_ratio=l1_ratio, cv=3, tol=TIGHT).fit(X, y, sample_weight=sw)
    theirs = sk.ElasticNetCV(l1_ratio=l1_ratio, cv=3, tol=1e-15, max_iter=100_000)
    theirs.fit(X, y, sample_weight=sw)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    assert ours.l1_ratio_ == theirs.l1_ratio_
    assert ours.alphas_.shape == theirs.alphas_.shape and ours.mse_path_.shape == theirs.mse_path_.shape
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-10)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=MSE_RTOL)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)


def test_elastic_net_cv_explicit_alphas_shape(reg):
    X, y, _ = reg
    alphas = np.geomspace(1.0, 0.01, 100)
    ours = ElasticNetCV(l1_ratio=[0.2, 0.7, 1.0], alphas=alphas, cv=3).fit(X, y)
    theirs = sk.ElasticNetCV(l1_ratio=[0.2, 0.7, 1.0], alphas=alphas, cv=3).fit(X, y)
    assert ours.alphas_.shape == theirs.alphas_.shape == (100,)
    assert ours.mse_path_.shape == theirs.mse_path_.shape == (3, 100, 3)


@pytest.mark.parametrize("multinomial", [False, True])
@pytest.mark.parametrize("scoring", ["neg_log_loss", "accuracy"])
def test_logistic_regression_cv_matches_sklearn(clf, multinomial, scoring):
    X, y2, y3, sw = clf
    y = y3 if multinomial else y2
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    kw = {"Cs": [0.01, 0.05, 0.3, 1.0, 10.0], "cv": cv, "scoring": scoring}
    ours = LogisticRegressionCV(tol=TIGHT, **kw).fit(X, y, sample_weight=sw)
    theirs = sk.LogisticRegressionCV(
        tol=1e-12, max_iter=10_000, l1_ratios=(0.0,), use_legacy_attributes=False, **kw
    )
    theirs.fit(X, y, sample_weight=sw)
    assert ours.scores_.shape == theirs.scores_.shape == (3, 1, 5)
    np.testing.assert_allclose(ours.scores_, theirs.scores_, atol=ATOL)
    assert ours.C_ == theirs.C_ and ours.l1_ratio_ == theirs.l1_ratio_
    np.testing.assert_allclose(ours.Cs_, theirs.Cs_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=ATOL)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=ATOL)
    assert ours.score(X, y, sample_weight=sw) == pytest.approx(theirs.score(X, y, sample_weight=sw), abs=ATOL)


@pytest.mark.filterwarnings("ignore:the best alpha")
def test_fold_alphas_scaled_keeps_c_fixed(clf):
    """cross_validate(fold_alphas="scaled"): fold k is the fit at alpha * sum(s) / sum(s_train_k)."""
    X, y2, _, sw = clf
    folds = list(KFold(3).split(X))
    alphas = np.array([0.1, 0.02])
    cvr = jr.cross_validate(
        X,
        y2,
        jr.LogisticLoss(),
        jr.L2(),
        alphas=alphas,
        cv=KFold(3),
        sample_weight=sw,
        scoring="deviance",
        tol=TIGHT,
        fold_alphas="scaled",
    )
    for k, (train, test) in enumerate(folds):
        scale = sw.sum() / sw[train].sum()
        res = jr.solve(
            X[train],
            y2[train],
            jr.LogisticLoss(),
            jr.L2(alpha=alphas * scale),
            sample_weight=sw[train],
            tol=TIGHT,
        )
        z = X[test] @ np.asarray(res.coef).T + np.asarray(res.intercept)
        dev = 2 * np.average(np.logaddexp(0, z) - y2[test][:, None] * z, weights=sw[test], axis=0)
        np.testing.assert_allclose(np.asarray(cvr.scores)[k], dev, rtol=1e-8)


# -- extras beyond scikit-learn ----------------------------------------------------------------


def test_penalty_factor(reg):
    X, y, _ = reg
    # Positive factors f_j equal rescaling feature j by 1 / f_j.
    f = np.array([0.5, 2.0, 1.0, 1.0, 0.5, 1.0, 3.0, 1.0])
    ours = Lasso(alpha=0.1, penalty_factor=f, tol=TIGHT).fit(X, y)
    ref = sk.Lasso(alpha=0.1, tol=1e-15, max_iter=100_000).fit(X / f, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_ / f, atol=ATOL)
    # f_0 = 0 leaves w_0 unpenalized: the optimality conditions, with X_0's gradient exactly zero.
    f[0] = 0.0
    model = Lasso(alpha=0.5, penalty_factor=f, tol=TIGHT).fit(X, y)
    grad = X.T @ (y - model.predict(X)) / len(y)
    on = model.coef_ != 0
    assert on[0] and abs(grad[0]) < ATOL
    np.testing.assert_allclose(grad[on], 0.5 * f[on] * np.sign(model.coef_[on]), atol=ATOL)
    assert np.all(np.abs(grad[~on]) <= 0.5 * f[~on] + ATOL)
    huge = Lasso(alpha=1e3, penalty_factor=f, tol=TIGHT).fit(X, y)
    assert np.all(huge.coef_[1:] == 0.0)
    assert huge.coef_[0] == pytest.approx(np.polyfit(X[:, 0], y, 1)[0], abs=ATOL)
    with pytest.raises(ValueError, match="penalty_factor"):
        Lasso(penalty_factor=np.ones(3)).fit(X, y)
    with pytest.raises(ValueError, match="penalty_factor"):
        LogisticRegression(penalty_factor=-np.ones(8)).fit(X, y > 1)


def test_cv_one_standard_error_rule_and_path(reg):
    X, y, _ = reg
    best = LassoCV(cv=3).fit(X, y)
    sparse = LassoCV(cv=3, select="1se").fit(X, y)
    assert sparse.alpha_ == sparse.alpha_1se_ == best.alpha_1se_ >= best.alpha_
    assert np.count_nonzero(sparse.coef_) <= np.count_nonzero(best.coef_)
    mean = best.mse_path_.mean(axis=1)
    stderr = best.mse_path_.std(axis=1, ddof=1) / np.sqrt(3)
    i = int(np.argmin(mean))
    assert best.alpha_1se_ == best.alphas_[np.flatnonzero(mean <= mean[i] + stderr[i])[0]]
    k = int(np.flatnonzero(best.path_.alphas == sparse.alpha_)[0])
    np.testing.assert_allclose(sparse.coef_, best.path_.coef[k])
    assert best.path_.coef.shape == (100, 8) and isinstance(best.path_.coef, np.ndarray)
    clf_cv = LogisticRegressionCV(Cs=5, cv=3, select="1se").fit(X, y > 1)
    assert clf_cv.C_ == clf_cv.C_1se_ and clf_cv.alpha_ == clf_cv.alpha_1se_
    with pytest.raises(ValueError, match="select"):
        LassoCV(select="max").fit(X, y)


def test_convergence_warning_names_the_gap(reg, clf):
    X, y, _ = reg
    with pytest.warns(ConvergenceWarning, match=r"duality gap \d\.\d+e[-+]\d+ after 10 iterations"):
        Lasso(alpha=1e-4, tol=1e-14, max_iter=10).fit(X, y)
    Xc, y2, _, _ = clf
    with pytest.warns(ConvergenceWarning, match="duality gap"):
        LogisticRegression(C=1e4, tol=1e-14, max_iter=10).fit(Xc, y2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        LassoCV(cv=3, tol=1e-14, max_iter=10).fit(X, y)
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert any(
        m.startswith("LassoCV (full-data fit at the chosen point)") and "duality gap" in m for m in messages
    )
    assert any(re.match(r"LassoCV: \d+ fold fits did not reach tol=1e-14", m) for m in messages)



def test_non_finite_iterations_warn_and_keep_the_last_finite_iterate(reg, clf):
    """Features near 1e150 overflow every step: a ConvergenceWarning with the reason, finite coefficients."""
    X, y, _ = reg
    Xc, y2, _, _ = clf
    for est, X_, y_ in [(Lasso(alpha=0.1), X, y), (LogisticRegression(), Xc, y2)]:
        with pytest.warns(ConvergenceWarning, match="did not converge: the iterations produced non-finite"):
            est.fit(1e150 * X_, y_)
        assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
        assert np.all(np.isfinite(est.predict(X_)))

def test_warm_start(reg, clf):
    X, y, _ = reg
    model = ElasticNet(alpha=0.05, tol=TIGHT, warm_start=True).fit(X, y)
    first = model.n_iter_
    model.set_params(alpha=0.049).fit(X, y)  # close: a cold start takes 20 iterations here
    cold = ElasticNet(alpha=0.049, tol=TIGHT).fit(X, y)
    assert model.n_iter_ < cold.n_iter_ <= first * 10
    np.testing.assert_allclose(model.coef_, cold.coef_, atol=ATOL)
    Xc, _, y3, _ = clf
    warm = LogisticRegression(C=0.3, tol=TIGHT, warm_start=True).fit(Xc, y3)
    assert warm.fit(Xc, y3).n_iter_[0] == 0  # restarts at its own solution
    warm.set_params(C=0.35).fit(Xc, y3)
    cold = LogisticRegression(C=0.35, tol=TIGHT).fit(Xc, y3)
    assert warm.n_iter_[0] <= cold.n_iter_[0]
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=ATOL)


@pytest.mark.parametrize(
    "est",
    [Lasso(alpha=0.1), Ridge(), ElasticNetCV(cv=3), LogisticRegression(), LogisticRegressionCV(Cs=5, cv=3)],
    ids=lambda e: type(e).__name__,
)
def test_float32_in_float32_out(reg, est):
    X, y, _ = reg
    target = (y > 1).astype(int) if isinstance(est, (LogisticRegression, LogisticRegressionCV)) else y
    model = clone(est).fit(X.astype(np.float32), target)
    assert model.coef_.dtype == np.float32 and np.asarray(model.intercept_).dtype == np.float32
    assert model.predict(X.astype(np.float32)).dtype == (np.float32 if is_regressor(model) else target.dtype)
    ref = clone(est).fit(X, target)
    # both fits stop at the default tol's duality gap, which bounds the objective, not the
    # coefficients: weakly regularized logistic coefficients (about 10 here) move by 4e-4 relative
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-3, atol=1e-3)


def test_works_without_x64(reg):
    X, y, _ = reg
    ref = Lasso(alpha=0.1).fit(X, y)
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")  # float64 input is computed in float32 without a dtype warning
        model = Lasso(alpha=0.1).fit(X, y)
        assert jr.solve(X, y, jr.SquaredLoss(), jr.L1(alpha=0.1)).coef.dtype == np.float32
    assert model.coef_.dtype == np.float64
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-3)


def test_bad_parameters(reg, clf):
    X, y, _ = reg
    for est in [
        Lasso(alpha=-1.0),
        ElasticNet(l1_ratio=1.5),
        Ridge(alpha=[1.0, 2.0]),
        Lasso(tol=-1.0),
        Lasso(max_iter=0),
        LassoCV(alphas=0),
        LassoCV(eps=0.0),
        ElasticNetCV(l1_ratio=[]),
    ]:
        with pytest.raises(ValueError):
            est.fit(X, y)
    Xc, y2, y3, _ = clf
    for est in [
        LogisticRegression(C=0.0),
        LogisticRegression(l1_ratio=-0.1),
        LogisticRegressionCV(Cs=[0.0, 1.0]),
        LogisticRegressionCV(scoring="f1"),
        LogisticRegressionCV(l1_ratios=[2.0]),
    ]:
        with pytest.raises(ValueError):
            est.fit(Xc, y2)
    with pytest.raises(ValueError, match="two classes"):
        LogisticRegressionCV(scoring="roc_auc").fit(Xc, y3)
    with pytest.raises(ValueError, match="zero total weight"):
        LogisticRegression().fit(Xc, y3, sample_weight=(y3 != 2).astype(float))
    order = np.argsort(y3, kind="stable")
    with pytest.raises(ValueError, match="fold . has no sample of the classes"):
        LogisticRegressionCV(cv=KFold(3)).fit(Xc[order], y3[order])


# -- compile once ------------------------------------------------------------------------------


def test_hyper_parameters_never_recompile(reg, clf):
    X, y, sw = reg
    Lasso(alpha=0.1).fit(X, y)
    LogisticRegression().fit(*clf[:2])
    LassoCV(cv=3).fit(X, y)
    before = _compiles()
    base = Lasso(alpha=0.1)
    for alpha in (0.3, 0.03):
        clone(base).set_params(alpha=alpha, tol=1e-6).fit(X, y, sample_weight=sw)
    ElasticNet(alpha=0.2, l1_ratio=0.3, penalty_factor=np.linspace(0, 1, 8)).fit(X, y)
    Ridge(alpha=5.0).fit(X, y)
    # 60 samples in 7 folds: training sets of 51 and 52 rows share one padded shape.
    search = GridSearchCV(Lasso(), {"alpha": [0.01, 0.1, 1.0]}, cv=7).fit(X, y)
    assert search.best_params_["alpha"] in (0.01, 0.1, 1.0)
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0], "l1_ratio": [0.0, 0.5]}, cv=3).fit(*clf[:2])
    # A CV estimator with new folds of the same shape, a new selection rule and a new grid of the same size.
    LassoCV(cv=KFold(3, shuffle=True, random_state=1), select="1se", tol=1e-5).fit(X, y, sample_weight=sw)
    LassoCV(cv=3, alphas=np.geomspace(1.0, 0.01, 100)).fit(X, y)
    assert _compiles() == before


# -- scikit-learn integration ------------------------------------------------------------------


def test_pipeline_grid_search_and_pandas(reg):
    X, y, _ = reg
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(8)])
    model = Lasso(alpha=0.1).fit(df, y)
    assert model.feature_names_in_.tolist() == list(df.columns) and model.n_features_in_ == 8
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(X)
    pipe = make_pipeline(StandardScaler(), ElasticNet(l1_ratio=0.5))
    search = GridSearchCV(pipe, {"elasticnet__alpha": [0.01, 0.1, 1.0]}, cv=3).fit(df, y)
    assert search.best_estimator_[0].feature_names_in_.tolist() == list(df.columns)
    assert search.predict(df).shape == (60,)
    clf_pipe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=5, cv=3)).fit(df, y > 1)
    assert clf_pipe.predict_proba(df).shape == (60, 2)
    cv_model = LassoCV(cv=3).fit(df, pd.Series(y))
    assert cv_model.feature_names_in_.tolist() == list(df.columns)
