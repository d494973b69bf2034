"""The solver: registry contracts, batching and compilation, scikit-learn references, degenerate data."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry import (
    GROUPS,
    LOSS,
    LOSSES,
    PENALTIES,
    PENALTY,
    WEIGHTS0,
    N,
    P,
    enet_gap,
    group_strengths,
    is_positive,
    make_data,
    np_dloss,
    np_enet,
    np_objective,
    null_gradient,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, PoissonRegressor, Ridge

import jaxreg as jr
from jaxreg.solvers import _solve_batched

TOL = 1e-12
SPARSE_FRACTIONS = np.array([10.0, 1.0, 0.95])  # of alpha_max: two exact-zero lanes, one just below
PATH_FRACTIONS = np.array([0.5, 0.1, 0.01])


@functools.cache
def data(loss_name: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_data(loss_name)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def alpha_max(case, loss, X, y, sample_weight=None) -> float:
    return float(case.make(1.0).critical_alpha(jnp.asarray(null_gradient(X, y, loss, sample_weight))))


def normalized(sample_weight, n: int) -> np.ndarray:
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    return s / s.sum()


def gradients(loss_name, X, y, coef, intercept, sample_weight=None, delta=1.0):
    """Gradients of the smooth part in ``w`` and ``b``, in NumPy."""
    s = normalized(sample_weight, len(y))
    coef = np.asarray(coef, float)
    z = X @ coef + np.asarray(intercept, float)
    g = np_dloss(loss_name, np.asarray(y, float), z, delta)
    sg = s[:, None] * g if g.ndim == 2 else s * g
    return X.T @ sg, sg.sum(axis=0)


def prox_gradient_residual(
    loss_name, X, y, penalty, coef, intercept, sample_weight=None
) -> tuple[float, float]:
    """``|w - prox(w - step grad)| / step`` (zero exactly at a minimizer) and ``|grad_b|``."""
    gw, gb = gradients(loss_name, X, y, coef, intercept, sample_weight)
    step = 1.0 / np.linalg.norm(X, 2) ** 2 * len(y)
    coef = np.asarray(coef, float)
    moved = np.asarray(penalty.prox(jnp.asarray(coef - step * gw), step))
    return float(np.max(np.abs(coef - moved)) / step), float(np.max(np.abs(gb)))


# -- registry contracts: penalties x losses ------------------------------------------------------------------


def registry_alphas(case, loss_case, X, y) -> np.ndarray:
    if not case.sparse:
        return np.array([1.0, 0.1, 0.01])
    amax = alpha_max(case, loss_case.loss, X, y)
    return amax * (PATH_FRACTIONS if case.free else SPARSE_FRACTIONS)


def _registry_pairs():
    """Every penalty with a loss of each intercept mode (squared: closed form, logistic: gradient steps);
    every loss with the lasso; the multinomial's 2-D coefficients with every family.

    Each pair of loss and penalty type is one compilation, so the grid is not the full product.
    """
    for case in PENALTIES:
        family = case.make(1.0)
        for loss_case in LOSSES:
            lasso = type(family) is jr.L1 and not is_positive(family)
            multi = loss_case.name == "multinomial" and not is_positive(family)
            poisson_ridge = loss_case.name == "poisson" and type(family) is jr.L2
            if loss_case.name in ("squared", "logistic") or lasso or multi or poisson_ridge:
                yield pytest.param(loss_case, case, id=f"{case}-{loss_case}")


@pytest.mark.parametrize("loss_case, case", list(_registry_pairs()))
def test_registry_solution_is_optimal(loss_case, case):
    """Every lane converges to a fixed point of the prox-gradient map; exact zeros from alpha_max up."""
    X, y = data(loss_case.name)
    alphas = registry_alphas(case, loss_case, X, y)
    penalty = case.make(jnp.asarray(alphas))
    res = jr.solve(X, y, loss_case.loss, penalty, tol=TOL)
    multi = loss_case.name == "multinomial"
    assert res.coef.shape == ((3, P, 3) if multi else (3, P))
    assert res.intercept.shape == ((3, 3) if multi else (3,))
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(res.status) == jr.Status.CONVERGED)
    assert np.all(np.isfinite(np.asarray(res.coef))) and np.all(np.isfinite(np.asarray(res.intercept)))
    assert np.all(np.asarray(res.gap) >= -1e-14)  # a sum of non-negative terms, up to rounding
    for i, a in enumerate(alphas):
        pen_i = case.make(float(a))
        coef, b = np.asarray(res.coef[i]), np.asarray(res.intercept[i])
        if is_positive(penalty):
            assert np.all(coef >= 0)
        r_w, r_b = prox_gradient_residual(loss_case.name, X, y, pen_i, coef, b)
        assert r_w <= 1e-5, (i, r_w)
        assert r_b <= 1e-5, (i, r_b)
    if case.sparse and not case.free:
        coef = np.asarray(res.coef)
        assert np.all(coef[:2] == 0.0)
        assert np.all(np.asarray(res.n_iter[:2]) <= 1)
        assert np.any(coef[2] != 0.0)
        s = jnp.full(N, 1.0 / N)
        loss = jr.losses.with_target(loss_case.loss, y)
        yb = jnp.asarray(y, jnp.int32) if multi else jnp.asarray(y)
        b0 = np.asarray(loss.intercept_only(yb, s))
        np.testing.assert_allclose(
            np.asarray(res.intercept[0]).reshape(-1), b0.reshape(-1), rtol=1e-12, atol=1e-12
        )
    if case.free and not is_positive(penalty):
        # the unpenalized coefficients are fitted even when every penalized one is zero
        assert np.any(np.asarray(res.coef[0])[list(case.free)] != 0.0)


@pytest.mark.parametrize("loss_case", LOSSES, ids=str)
def test_alpha_max_with_sample_weights(loss_case):
    """``alpha_max`` from the weighted null gradient: zero from there up (at once), nonzero just below."""
    X, y = data(loss_case.name)
    sw = np.random.default_rng(2).uniform(0.0, 3.0, N)
    sw[:3] = 1.0  # keeps every class of the multinomial data
    amax = alpha_max(PENALTY["L1"], loss_case.loss, X, y, sw)
    alphas = jnp.asarray(amax * np.array([1e6, 1.0, 0.95]))
    res = jr.solve(X, y, loss_case.loss, jr.L1(alphas), sample_weight=sw, tol=TOL)
    coef = np.asarray(res.coef)
    assert np.all(coef[:2] == 0.0) and np.any(coef[2] != 0.0)
    assert np.all(np.asarray(res.n_iter[:2]) <= 1)
    assert np.all(np.asarray(res.converged))
    # the unweighted alpha_max is a different number: the weights are really used
    assert not np.isclose(amax, alpha_max(PENALTY["L1"], loss_case.loss, X, y), rtol=1e-3)


# -- batching, jit, dtype, compilation -----------------------------------------------------------------------


def test_vmap_equals_loop_equals_batched():
    X, y = data("squared")
    loss = jr.SquaredLoss()
    amax = alpha_max(PENALTY["L1"], loss, X, y)
    alphas = amax * PATH_FRACTIONS
    vmapped = jax.vmap(lambda a: jr.solve(X, y, loss, jr.L1(a), tol=TOL).coef)(jnp.asarray(alphas))
    looped = np.stack([np.asarray(jr.solve(X, y, loss, jr.L1(float(a)), tol=TOL).coef) for a in alphas])
    batched = jr.solve(X, y, loss, jr.L1(jnp.asarray(alphas)), tol=TOL).coef
    assert vmapped.shape == batched.shape == looped.shape == (3, P)
    np.testing.assert_allclose(vmapped, looped, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(batched, looped, rtol=1e-9, atol=1e-9)
    # zero patterns agree exactly
    np.testing.assert_array_equal(np.asarray(vmapped) == 0, looped == 0)
    np.testing.assert_array_equal(np.asarray(batched) == 0, looped == 0)


def test_batch_shape_is_kept_for_2d_batches():
    X, y = data("squared")
    alphas = np.array([[0.3, 0.1, 0.03]])
    res = jr.solve(X, y, jr.SquaredLoss(), jr.ElasticNet(jnp.asarray(alphas), jnp.asarray([[0.5]])), tol=TOL)
    assert res.coef.shape == (1, 3, P) and res.intercept.shape == (1, 3) and res.n_iter.shape == (1, 3)
    flat = jr.solve(X, y, jr.SquaredLoss(), jr.ElasticNet(jnp.asarray(alphas[0]), 0.5), tol=TOL)
    np.testing.assert_allclose(res.coef[0], flat.coef, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(res.n_iter[0], flat.n_iter)


def test_jit_equals_eager():
    X, y = data("squared")
    loss = jr.SquaredLoss()

    @jax.jit
    def fit(X, y, alpha, tol):
        res = jr.solve(X, y, loss, jr.L1(alpha), tol=tol)
        return res.coef, res.intercept, res.n_iter

    amax = alpha_max(PENALTY["L1"], loss, X, y)
    for a in amax * np.array([0.5, 0.05]):
        coef, b, n_iter = fit(jnp.asarray(X), jnp.asarray(y), a, TOL)
        eager = jr.solve(X, y, loss, jr.L1(float(a)), tol=TOL)
        np.testing.assert_allclose(coef, eager.coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, eager.intercept, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(coef) == 0, np.asarray(eager.coef) == 0)
        assert int(n_iter) == int(eager.n_iter)


@pytest.mark.parametrize("loss_case", LOSSES, ids=str)
def test_float32_in_float32_out_and_agrees_with_float64(loss_case):
    X, y = data(loss_case.name)
    amax = alpha_max(PENALTY["L1"], loss_case.loss, X, y)
    # float32 gradients carry errors of ~1e-7 |X| |u|: far below alpha_max the gap cannot certify 2e-6
    alphas = amax * np.array([0.5, 0.2, 0.05])
    ref = jr.solve(X, y, loss_case.loss, jr.L1(jnp.asarray(alphas)), tol=TOL)
    X32 = X.astype(np.float32)
    y32 = y.astype(np.float32)
    # the smallest tol that float32 resolves with a margin (check_tol_max_iter warns below 10 eps,
    # 1.2e-6): below it, whether a lane converges or stalls depends on the rounding of the program
    res = jr.solve(X32, y32, loss_case.loss, jr.L1(jnp.asarray(alphas, jnp.float32)), tol=2e-6)
    for name in ("coef", "intercept", "gap"):
        assert getattr(res, name).dtype == jnp.float32, name
    assert np.all(np.asarray(res.converged))
    # float32 resolution of the coefficients and of the objective
    scale = max(1.0, float(np.max(np.abs(np.asarray(ref.coef)))))
    np.testing.assert_allclose(np.asarray(res.coef, float), ref.coef, atol=1e-4 * scale)
    np.testing.assert_allclose(np.asarray(res.intercept, float), ref.intercept, atol=1e-4 * scale)
    for i, a in enumerate(alphas):
        obj = [
            np_objective(
                loss_case.name,
                X,
                y,
                np.asarray(r.coef[i], float),
                np.asarray(r.intercept[i], float),
                np_enet(np.asarray(r.coef[i], float), a, 1.0),
            )
            for r in (res, ref)
        ]
        assert obj[0] <= obj[1] * (1 + 1e-5) + 1e-6
    # float32 data with a float64 alpha stays float32
    mixed = jr.solve(X32, y32, loss_case.loss, jr.L1(jnp.asarray(alphas)), tol=1e-6)
    assert mixed.coef.dtype == jnp.float32


def test_no_recompilation_for_new_alpha_tol_data_or_weights():
    X, y = data("squared")
    loss = jr.SquaredLoss()
    jr.solve(X, y, loss, jr.L1(0.1), tol=1e-6)
    size = _solve_batched._cache_size()
    rng = np.random.default_rng(0)
    X2 = rng.standard_normal(X.shape)
    y2 = rng.standard_normal(len(y))
    jr.solve(X, y, loss, jr.L1(0.05), tol=1e-6)
    jr.solve(X, y, loss, jr.L1(0.05), tol=1e-9)
    jr.solve(X2, y2, loss, jr.L1(0.3), tol=1e-6)
    jr.solve(X2, y2, loss, jr.L1(1), tol=1e-6)
    jr.solve(X2, y2, loss, jr.L1(np.float32(0.2)), tol=1e-6)
    jr.solve(X2, y2, loss, jr.L1(jnp.asarray(0.2)), tol=1e-6)
    jr.solve(X2, y2, loss, jr.L1(0.1, weights=np.linspace(0.5, 2, P)), tol=1e-6)
    jr.solve(X2, y2, loss, jr.L1(0.1), sample_weight=rng.uniform(size=len(y)), tol=1e-6)
    jr.solve(X2.tolist(), y2.tolist(), loss, jr.L1(0.1), tol=1e-6)
    assert _solve_batched._cache_size() == size
    # different shapes or static configuration do compile (the counter is not vacuous)
    jr.solve(X2, y2, loss, jr.L1(0.1), tol=1e-6, max_iter=123)
    assert _solve_batched._cache_size() == size + 1
    # from 1e-5 up, float64 working sets of a large enough design are solved in float32 on a CPU:
    # one more program for all such tols
    X3, y3 = rng.standard_normal((200, 100)), rng.standard_normal(200)
    jr.solve(X3, y3, loss, jr.L1(0.1), tol=1e-6)
    size = _solve_batched._cache_size()
    jr.solve(X3, y3, loss, jr.L1(0.1), tol=1e-4)
    jr.solve(X3, y3, loss, jr.L1(0.2), tol=1e-3)
    assert _solve_batched._cache_size() == size + int(jax.default_backend() == "cpu")


# -- scikit-learn references (float64) -----------------------------------------------------------------------


def sk_fit(est, X, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, sample_weight=sample_weight)


def assert_matches(
    loss_name,
    X,
    y,
    res,
    i,
    alpha,
    l1_ratio,
    sk_coef,
    sk_intercept,
    sample_weight=None,
    weights=None,
    coef_atol=1e-6,
):
    """Objective (elastic-net penalty) no worse than the reference, then coefficients close."""
    coef, b = np.asarray(res.coef[i]), np.asarray(res.intercept[i])
    ours = np_objective(loss_name, X, y, coef, b, np_enet(coef, alpha, l1_ratio, weights), sample_weight)
    ref_penalty = np_enet(sk_coef, alpha, l1_ratio, weights)
    ref = np_objective(loss_name, X, y, sk_coef, sk_intercept, ref_penalty, sample_weight)
    assert ours <= ref * (1 + 1e-8)
    np.testing.assert_allclose(coef, sk_coef, atol=coef_atol, rtol=0)
    np.testing.assert_allclose(b, sk_intercept, atol=coef_atol, rtol=0)


def squared_tol_abs(y, sample_weight=None) -> float:
    s = normalized(sample_weight, len(y))
    return TOL * float(np.sum(s * (y - np.sum(s * y)) ** 2))


@pytest.mark.parametrize("positive", [False, True], ids=["", "positive"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_lasso_and_elastic_net_match_sklearn(l1_ratio, positive, weighted):
    X, y = data("squared")
    sw = None
    if weighted:
        sw = np.random.default_rng(1).uniform(0.2, 3.0, N)
        sw[[3, 7]] = 0.0
    make = (
        (lambda a: jr.L1(a, positive=positive))
        if l1_ratio == 1
        else (lambda a: jr.ElasticNet(a, l1_ratio, positive=positive))
    )
    v = null_gradient(X, y, jr.SquaredLoss(), sw)
    amax = float(make(1.0).critical_alpha(jnp.asarray(v)))
    alphas = amax * PATH_FRACTIONS
    res = jr.solve(X, y, jr.SquaredLoss(), make(jnp.asarray(alphas)), tol=TOL, sample_weight=sw)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        Est = Lasso if l1_ratio == 1 else functools.partial(ElasticNet, l1_ratio=l1_ratio)
        sk = sk_fit(Est(alpha=a, positive=positive, tol=1e-14, max_iter=1_000_000), X, y, sw)
        # optimality first: the gap of our solution, computed independently
        gap = enet_gap(X, y, np.asarray(res.coef[i]), float(res.intercept[i]), a, l1_ratio, sw, positive)
        assert -1e-14 <= gap <= 10 * squared_tol_abs(y, sw)
        assert float(res.gap[i]) <= squared_tol_abs(y, sw) * (1 + 1e-9)
        assert enet_gap(X, y, sk.coef_, sk.intercept_, a, l1_ratio, sw, positive) <= 1e-9
        assert_matches("squared", X, y, res, i, a, l1_ratio, sk.coef_, sk.intercept_, sw)


def test_ridge_matches_sklearn():
    X, y = data("squared")
    alphas = np.array([1.0, 0.1, 0.01])
    res = jr.solve(X, y, jr.SquaredLoss(), jr.L2(jnp.asarray(alphas)), tol=TOL)
    for i, a in enumerate(alphas):
        # sklearn's Ridge: ||y - Xw - b||**2 + alpha_sk |w|**2, i.e. alpha_sk = n * alpha
        sk = Ridge(alpha=N * a, solver="cholesky").fit(X, y)
        gap = enet_gap(X, y, np.asarray(res.coef[i]), float(res.intercept[i]), a, 0.0)
        assert gap <= 10 * squared_tol_abs(y)
        assert_matches("squared", X, y, res, i, a, 0.0, sk.coef_, sk.intercept_)


@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_without_intercept_matches_sklearn(loss_name):
    X, y = data(loss_name)
    loss = LOSS[loss_name].loss
    alphas = alpha_max(PENALTY["L1"], loss, X, y) * PATH_FRACTIONS
    res = jr.solve(X, y, loss, jr.L1(jnp.asarray(alphas)), fit_intercept=False, tol=TOL)
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(res.intercept) == 0.0)
    for i, a in enumerate(alphas):
        if loss_name == "squared":
            est = Lasso(alpha=a, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
        else:
            est = LogisticRegression(
                C=1.0 / (a * N),
                l1_ratio=1.0,
                solver="saga",
                fit_intercept=False,
                tol=1e-14,
                max_iter=100_000,
                random_state=0,
            )
        sk = sk_fit(est, X, y)
        assert_matches(loss_name, X, y, res, i, a, 1.0, sk.coef_.ravel(), 0.0)


@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_integer_sample_weights_equal_repeated_rows(loss_name):
    X, y = data(loss_name)
    counts = np.tile([2, 0, 1, 1], N // 4)
    assert counts.sum() == N  # the repeated data has the same shape: no new compilation
    Xr, yr = np.repeat(X, counts, axis=0), np.repeat(y, counts)
    loss = LOSS[loss_name].loss
    alphas = jnp.asarray(alpha_max(PENALTY["L1"], loss, X, y) * PATH_FRACTIONS)
    weighted = jr.solve(X, y, loss, jr.L1(alphas), sample_weight=counts, tol=TOL)
    repeated = jr.solve(Xr, yr, loss, jr.L1(alphas), tol=TOL)
    np.testing.assert_allclose(weighted.coef, repeated.coef, atol=1e-7)
    np.testing.assert_allclose(weighted.intercept, repeated.intercept, atol=1e-7)
    # scaling all weights changes nothing
    scaled = jr.solve(X, y, loss, jr.L1(alphas), sample_weight=1e3 * counts, tol=TOL)
    np.testing.assert_allclose(scaled.coef, weighted.coef, atol=1e-7)


def test_zero_penalty_factor_matches_partialled_out_lasso():
    """Exact reference for ``weights_1 = 0``: eliminate the free feature and the intercept by projection.

    For fixed penalized coefficients the optimal ``(b, w_1)`` is the least-squares fit of the residual on
    ``F = [1, x_1]``, so the penalized coefficients solve a lasso without intercept on ``(M X_pen, M y)``
    with ``M = I - F F^+``, whose penalty factors become a column scaling ``x_j / weights_j``.
    """
    X, y = data("squared")
    pen_cols = [j for j in range(P) if WEIGHTS0[j] > 0]
    F = np.column_stack([np.ones(N), X[:, 1]])
    M = np.eye(N) - F @ np.linalg.pinv(F)
    Xp = (M @ X[:, pen_cols]) / WEIGHTS0[pen_cols]
    yp = M @ y
    amax = alpha_max(PENALTY["L1-weights0"], jr.SquaredLoss(), X, y)
    alphas = amax * np.array([10.0, 0.1, 0.01])
    res = jr.solve(X, y, jr.SquaredLoss(), jr.L1(jnp.asarray(alphas), weights=WEIGHTS0), tol=TOL)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        sk = sk_fit(Lasso(alpha=a, fit_intercept=False, tol=1e-14, max_iter=1_000_000), Xp, yp)
        ref = np.zeros(P)
        ref[pen_cols] = sk.coef_ / WEIGHTS0[pen_cols]
        b, w1 = np.linalg.lstsq(F, y - X @ ref, rcond=None)[0]
        ref[1] = w1
        gw, _ = gradients("squared", X, y, res.coef[i], res.intercept[i])
        assert abs(gw[1]) <= 1e-7  # the free feature is stationary
        assert_matches("squared", X, y, res, i, a, 1.0, ref, b, weights=WEIGHTS0)
    assert np.all(np.asarray(res.coef[0])[pen_cols] == 0.0) and res.coef[0, 1] != 0.0


def test_zero_penalty_factor_logistic_kkt_and_unpenalized_reference():
    X, y = data("logistic")
    amax = alpha_max(PENALTY["L1-weights0"], jr.LogisticLoss(), X, y)
    alphas = amax * np.array([10.0, 0.1, 0.01])
    res = jr.solve(X, y, jr.LogisticLoss(), jr.L1(jnp.asarray(alphas), weights=WEIGHTS0), tol=TOL)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        coef = np.asarray(res.coef[i])
        gw, gb = gradients("logistic", X, y, coef, res.intercept[i])
        assert abs(gw[1]) <= 1e-7 and abs(gb) <= 1e-7
        on = (coef != 0) & (WEIGHTS0 > 0)
        off = (coef == 0) & (WEIGHTS0 > 0)
        np.testing.assert_allclose(-gw[on], a * WEIGHTS0[on] * np.sign(coef[on]), atol=1e-6)
        assert np.all(np.abs(gw[off]) <= a * WEIGHTS0[off] * (1 + 1e-6))
    # far above alpha_max only the free feature and the intercept are fitted: an unpenalized model
    assert np.all(np.asarray(res.coef[0])[WEIGHTS0 > 0] == 0.0)
    sk = LogisticRegression(C=np.inf, tol=1e-14, max_iter=10_000).fit(X[:, [1]], y)
    np.testing.assert_allclose(res.coef[0, 1], sk.coef_[0, 0], atol=1e-6)
    np.testing.assert_allclose(res.intercept[0], sk.intercept_[0], atol=1e-6)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_logistic_matches_sklearn(l1_ratio):
    X, y = data("logistic")
    if l1_ratio == 1:
        alphas = alpha_max(PENALTY["L1"], jr.LogisticLoss(), X, y) * PATH_FRACTIONS
        penalty = jr.L1(jnp.asarray(alphas))
    else:
        alphas = np.array([1.0, 0.1, 0.01])
        penalty = jr.L2(jnp.asarray(alphas))
    res = jr.solve(X, y, jr.LogisticLoss(), penalty, tol=TOL)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        # sklearn: C * sum_i loss_i + r(w); divided by C n this is jaxreg's objective with alpha = 1 / (C n)
        solver = "saga" if l1_ratio == 1 else "lbfgs"
        est = LogisticRegression(
            C=1.0 / (a * N), l1_ratio=l1_ratio, solver=solver, tol=1e-14, max_iter=100_000, random_state=0
        )
        sk = sk_fit(est, X, y)
        assert_matches("logistic", X, y, res, i, a, l1_ratio, sk.coef_[0], sk.intercept_[0])


def test_multinomial_matches_sklearn():
    X, y = data("multinomial")
    alphas = np.array([1.0, 0.1, 0.01])
    res = jr.solve(X, y, jr.MultinomialLoss(), jr.L2(jnp.asarray(alphas)), tol=TOL)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        sk = LogisticRegression(C=1.0 / (a * N), l1_ratio=0.0, tol=1e-14, max_iter=100_000).fit(
            X, y.astype(int)
        )
        coef, b = np.asarray(res.coef[i]), np.asarray(res.intercept[i])
        assert coef.shape == (P, 3)
        # intercepts are defined up to a common shift
        ours = np_objective("multinomial", X, y, coef, b, np_enet(coef, a, 0.0))
        ref = np_objective("multinomial", X, y, sk.coef_.T, sk.intercept_, np_enet(sk.coef_.T, a, 0.0))
        assert ours <= ref * (1 + 1e-8)
        np.testing.assert_allclose(coef, sk.coef_.T, atol=1e-6)
        np.testing.assert_allclose(b - b.mean(), sk.intercept_ - sk.intercept_.mean(), atol=1e-6)


def test_poisson_matches_sklearn():
    X, y = data("poisson")
    alphas = np.array([1.0, 0.1, 0.01])
    res = jr.solve(X, y, jr.PoissonLoss(), jr.L2(jnp.asarray(alphas)), tol=TOL)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        # PoissonRegressor: mean half deviance + alpha / 2 |w|**2, the same scaling
        sk = PoissonRegressor(alpha=a, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(X, y)
        assert_matches("poisson", X, y, res, i, a, 0.0, sk.coef_, sk.intercept_)


@pytest.mark.parametrize("loss_name", ["squared", "logistic", "multinomial"])
def test_group_lasso_kkt(loss_name):
    X, y = data(loss_name)
    case = PENALTY["GroupLasso-weights"]
    alphas = alpha_max(case, LOSS[loss_name].loss, X, y) * PATH_FRACTIONS
    res = jr.solve(X, y, LOSS[loss_name].loss, case.make(jnp.asarray(alphas)), tol=TOL)
    assert np.all(np.asarray(res.converged))
    ids = np.asarray(GROUPS)
    seen_zero = seen_nonzero = False
    for i, a in enumerate(alphas):
        coef = np.asarray(res.coef[i])
        gw, gb = gradients(loss_name, X, y, coef, res.intercept[i])
        np.testing.assert_allclose(gb, 0.0, atol=1e-7)
        lam = group_strengths(case.make(a))
        for g in range(lam.size):
            wg, vg = coef[ids == g], -gw[ids == g]
            if np.all(wg == 0):
                seen_zero = True
                assert np.linalg.norm(vg) <= lam[g] * (1 + 1e-6)
            else:
                seen_nonzero = True
                np.testing.assert_allclose(vg, lam[g] * wg / np.linalg.norm(wg), atol=1e-6)
    assert seen_zero and seen_nonzero


# -- degenerate data -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
@pytest.mark.parametrize("pen_name", ["L1", "L2"])
def test_constant_and_zero_columns(loss_name, pen_name):
    X, y = data(loss_name)
    X = X.copy()
    X[:, 2] = 3.0
    X[:, 3] = 0.0
    case = PENALTY[pen_name]
    if case.sparse:
        alphas = alpha_max(case, LOSS[loss_name].loss, X, y) * PATH_FRACTIONS
    else:
        alphas = np.array([1.0, 0.1, 0.01])
    res = jr.solve(X, y, LOSS[loss_name].loss, case.make(jnp.asarray(alphas)), tol=TOL)
    coef = np.asarray(res.coef)
    assert np.all(np.isfinite(coef)) and np.all(np.isfinite(np.asarray(res.intercept)))
    assert np.all(np.asarray(res.converged))
    assert np.all(coef[:, 3] == 0.0)
    if case.sparse:
        assert np.all(coef[:, 2] == 0.0)
    else:
        np.testing.assert_allclose(coef[:, 2], 0.0, atol=1e-6)  # the solver's precision at this tol
    # and the fit is optimal, with the other columns in use
    keep = [0, 1, 4, 5]
    for i, a in enumerate(alphas):
        r_w, r_b = prox_gradient_residual(loss_name, X, y, case.make(float(a)), coef[i], res.intercept[i])
        assert r_w <= 1e-5 and r_b <= 1e-5
    assert np.any(coef[:, keep] != 0)


@pytest.mark.parametrize("loss_name, pen_name", [("squared", "L1"), ("squared", "L2"), ("huber", "L1")])
def test_constant_target(loss_name, pen_name):
    X, _ = data(loss_name)
    y = np.full(N, 2.5)
    res = jr.solve(X, y, LOSS[loss_name].loss, PENALTY[pen_name].make(jnp.asarray([1.0, 0.1, 0.01])), tol=TOL)
    assert np.all(np.asarray(res.coef) == 0.0)
    np.testing.assert_allclose(res.intercept, 2.5, rtol=1e-14)
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(res.n_iter) <= 1)
    assert np.all(np.isfinite(np.asarray(res.gap)))


@pytest.mark.parametrize("pen_name", ["L1", "ElasticNet", "L2"])
def test_duplicate_columns(pen_name):
    X, y = data("squared")
    X = X.copy()
    X[:, 5] = X[:, 4]
    case = PENALTY[pen_name]
    l1_ratio = {"L1": 1.0, "ElasticNet": 0.5, "L2": 0.0}[pen_name]
    alphas = (
        alpha_max(case, jr.SquaredLoss(), X, y) * PATH_FRACTIONS
        if case.sparse
        else np.array([1.0, 0.1, 0.01])
    )
    res = jr.solve(X, y, jr.SquaredLoss(), case.make(jnp.asarray(alphas)), tol=TOL)
    assert np.all(np.asarray(res.converged))
    for i, a in enumerate(alphas):
        coef = np.asarray(res.coef[i])
        if pen_name == "L2":
            sk = Ridge(alpha=N * a, solver="cholesky").fit(X, y)
        else:
            sk = sk_fit(ElasticNet(alpha=a, l1_ratio=l1_ratio, tol=1e-14, max_iter=1_000_000), X, y)
        ours = np_objective("squared", X, y, coef, res.intercept[i], np_enet(coef, a, l1_ratio))
        ref = np_objective("squared", X, y, sk.coef_, sk.intercept_, np_enet(sk.coef_, a, l1_ratio))
        assert ours <= ref * (1 + 1e-8)
        if pen_name == "L1":  # not unique: only the sum of the twins is determined
            np.testing.assert_allclose(coef[4] + coef[5], sk.coef_[4] + sk.coef_[5], atol=1e-6)
            np.testing.assert_allclose(coef[:4], sk.coef_[:4], atol=1e-6)
        else:  # strictly convex: the twins share equally
            np.testing.assert_allclose(coef[4], coef[5], atol=1e-8)
            np.testing.assert_allclose(coef, sk.coef_, atol=1e-6)


def test_many_more_features_than_samples():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 10_000))
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(5)
    amax = alpha_max(PENALTY["L1"], jr.SquaredLoss(), X, y)
    alphas = amax * np.array([0.5, 0.1, 0.05])
    res = jr.solve(X, y, jr.SquaredLoss(), jr.L1(jnp.asarray(alphas)), tol=1e-10)
    assert np.all(np.asarray(res.converged)) and np.all(np.isfinite(np.asarray(res.coef)))
    for i, a in enumerate(alphas):
        coef = np.asarray(res.coef[i])
        sk = sk_fit(Lasso(alpha=a, tol=1e-12, max_iter=1_000_000), X, y)
        gap = enet_gap(X, y, coef, float(res.intercept[i]), a, 1.0)
        assert gap <= 1e-9 * np.var(y)
        ours = np_objective("squared", X, y, coef, res.intercept[i], np_enet(coef, a, 1.0))
        ref = np_objective("squared", X, y, sk.coef_, sk.intercept_, np_enet(sk.coef_, a, 1.0))
        assert ours <= ref * (1 + 1e-6)
        # in general position the lasso solution is unique, with at most n nonzeros
        assert np.count_nonzero(coef) <= len(y)
        np.testing.assert_allclose(coef, sk.coef_, atol=1e-5)


def test_single_sample():
    X = np.array([[3.0, 1.0, -0.5]])
    y = np.array([2.0])
    with_b = jr.solve(X, y, jr.SquaredLoss(), jr.L1(1.0), tol=TOL)
    assert np.all(np.asarray(with_b.coef) == 0.0) and float(with_b.intercept) == 2.0
    assert bool(with_b.converged)
    # without intercept, 1/2 (2 - x @ w)**2 + |w|_1 puts all weight on the largest |x_j|: w_0 = (6 - 1) / 9
    without = jr.solve(X, y, jr.SquaredLoss(), jr.L1(1.0), fit_intercept=False, tol=TOL)
    np.testing.assert_allclose(without.coef, [5.0 / 9.0, 0.0, 0.0], atol=1e-9)
    assert float(without.intercept) == 0.0
    assert np.all(np.asarray(without.coef)[1:] == 0.0)



def test_alpha_zero_is_least_squares_where_well_posed_and_warns_where_not():
    X, y = data("squared")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n > p: no warning
        res = jr.solve(X, y, jr.SquaredLoss(), jr.L1(jnp.asarray([0.0, 0.1])), tol=TOL)
    assert np.all(np.asarray(res.converged))
    coef, b = np.asarray(res.coef[0]), float(res.intercept[0])
    ref = np.linalg.lstsq(np.column_stack([X, np.ones(N)]), y, rcond=None)[0]
    np.testing.assert_allclose(coef, ref[:-1], rtol=1e-8, atol=1e-10)
    assert b == pytest.approx(ref[-1], rel=1e-8, abs=1e-10)
    wide = np.column_stack([X[:5], X[:5] @ np.ones((P, 2))])  # 5 samples, 8 features
    for pen in (jr.L1(0.0), jr.ElasticNet(alpha=jnp.asarray([0.1, 0.0]))):
        with pytest.warns(UserWarning, match=r"alpha = 0 leaves the problem unpenalized.*n_features=8 >= "):
            jr.solve(wide, y[:5], jr.SquaredLoss(), pen, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jr.solve(wide, y[:5], jr.SquaredLoss(), jr.L1(0.1), tol=1e-6)  # penalized: no warning


def test_columns_on_scales_1e_minus_6_and_1e6():
    """Squared loss with columns scaled by 1e-6, 1 and 1e6: the lasso of the rescaled problem, exactly.

    ``X = Z * scale`` with the penalty ``alpha |w|_1`` is the lasso on ``Z`` with penalty factors
    ``1 / scale`` (``v = w * scale``): the tiny columns are almost free, the huge ones almost excluded.
    """
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((N, P))
    scale = np.array([1e-6, 1e6, 1.0, 1e-6, 1e6, 1.0])
    y = Z @ np.array([1.0, -2.0, 0.5, 0.0, 0.3, 0.0]) + 0.1 * rng.standard_normal(N)
    X = Z * scale
    amax = float(jr.alpha_max(X, y))
    alphas = amax * np.array([0.5, 0.1, 0.01])
    res = jr.solve(X, y, jr.SquaredLoss(), jr.L1(jnp.asarray(alphas)), tol=TOL)
    ref = jr.solve(Z, y, jr.SquaredLoss(), jr.L1(jnp.asarray(alphas), weights=1.0 / scale), tol=TOL)
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(ref.converged))
    v = np.asarray(res.coef) * scale
    # A solution within g of the optimum is within sqrt(2 g / mu) of it in v, where the objective is
    # mu-strongly convex (the centered Gram matrix of Z over n): two differ by sqrt(4 (g1 + g2) / mu)
    # at most, and their intercepts ybar - mean(Z) @ v by |mean(Z)| times that.
    Zc = Z - Z.mean(axis=0)
    mu = np.linalg.eigvalsh(Zc.T @ Zc / N)[0]
    bound = np.sqrt(4 * (np.asarray(res.gap) + np.asarray(ref.gap)) / mu)
    assert np.all(np.linalg.norm(v - np.asarray(ref.coef), axis=1) <= bound), bound
    db = np.abs(np.asarray(res.intercept) - np.asarray(ref.intercept))
    assert np.all(db <= np.linalg.norm(Z.mean(axis=0)) * bound)
    for i, a in enumerate(alphas):
        sk = sk_fit(Lasso(alpha=a, tol=1e-14, max_iter=1_000_000), X, y)
        coef = np.asarray(res.coef[i])
        ours = np_objective("squared", X, y, coef, res.intercept[i], np_enet(coef, a, 1.0))
        theirs = np_objective("squared", X, y, sk.coef_, sk.intercept_, np_enet(sk.coef_, a, 1.0))
        assert ours <= theirs * (1 + 1e-9)
    assert np.all(np.isfinite(v)) and np.any(v[:, 1] != 0.0)


@pytest.mark.parametrize("loss_name", ["squared", "logistic", "poisson"])
def test_non_finite_iterates_stop_unconverged_with_their_reason(loss_name):
    """Features near 1e150 overflow every step: status NONFINITE, never converged, finite coefficients."""
    X, y = data(loss_name)
    loss = LOSS[loss_name].loss
    res = jr.solve(1e150 * X, y, loss, jr.L1(jnp.asarray([0.1, 1e-3])), tol=1e-8)
    assert np.all(np.asarray(res.status) == jr.Status.NONFINITE)
    assert not np.any(np.asarray(res.converged))
    assert np.all(np.isfinite(np.asarray(res.coef))) and np.all(np.isfinite(np.asarray(res.intercept)))


def test_results_are_deterministic_run_to_run():
    """The same calls, again and after recompiling, give bitwise the same numbers."""
    X, y = data("logistic")
    sw = np.random.default_rng(4).uniform(0.5, 2.0, N)
    Xs, ys = data("squared")
    enet = jr.ElasticNet(jnp.asarray([0.05, 0.005]), 0.5)
    lasso = jr.L1(jnp.asarray([0.1, 0.01]), weights=WEIGHTS0)

    def run():
        a = jr.solve(X, y, jr.LogisticLoss(), enet, sample_weight=sw, tol=1e-10)
        b = jr.solve(Xs, ys, jr.SquaredLoss(), lasso, sample_weight=sw, tol=1e-10)
        return [np.asarray(x) for x in (*a, *b)]

    first = run()
    again = run()
    jax.clear_caches()
    recompiled = run()
    for a, b, c in zip(first, again, recompiled):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)

# -- properties on random problems ---------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw):
    """A small regression problem: shape, column scales, target scale and offset, sample weights, penalty."""
    n = draw(st.sampled_from([N, 24]))  # few shapes: each one compiles
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spread = draw(st.floats(0.0, 1.0))
    X = rng.standard_normal((n, P)) * 10.0 ** rng.uniform(-spread, spread, P)
    y_scale = 10.0 ** draw(st.floats(-3.0, 3.0))
    y = X @ (rng.standard_normal(P) / np.abs(X).mean(axis=0)) + draw(
        st.floats(0.1, 2.0)
    ) * rng.standard_normal(n)
    y = y_scale * (y + draw(st.floats(-5.0, 5.0)))
    sw = None
    if draw(st.booleans()):
        sw = rng.uniform(0.0, 3.0, n)
        sw[rng.uniform(size=n) < 0.15] = 0.0
        sw[0] = 1.0
    l1_ratio = draw(st.sampled_from([1.0, 0.8, 0.3]))
    factors = rng.uniform(0.2, 3.0, P) if l1_ratio == 1.0 and draw(st.booleans()) else None
    fraction = 10.0 ** draw(st.floats(-2.5, -0.05))
    return X, y, sw, l1_ratio, factors, fraction


def _penalty(alpha, l1_ratio, factors):
    return jr.L1(alpha, weights=factors) if l1_ratio == 1.0 else jr.ElasticNet(alpha, l1_ratio)


@PROPERTY
@given(problems())
def test_property_matches_sklearn_batched_equals_looped_and_permutation_equivariant(problem):
    X, y, sw, l1_ratio, factors, fraction = problem
    amax = float(
        _penalty(1.0, l1_ratio, factors).critical_alpha(
            jnp.asarray(null_gradient(X, y, jr.SquaredLoss(), sw))
        )
    )
    alphas = amax * fraction * np.array([1.0, 1 / 3, 1 / 10])
    res = jr.solve(
        X, y, jr.SquaredLoss(), _penalty(jnp.asarray(alphas), l1_ratio, factors), sample_weight=sw, tol=1e-10
    )
    assert np.all(np.asarray(res.converged))
    wt = np.ones(P) if factors is None else factors
    for i, a in enumerate(alphas):
        coef, b = np.asarray(res.coef[i]), float(res.intercept[i])
        # scikit-learn has no penalty factors: scale the columns instead (exact for the lasso)
        Est = Lasso if l1_ratio == 1.0 else functools.partial(ElasticNet, l1_ratio=l1_ratio)
        sk = sk_fit(Est(alpha=a, tol=1e-10, max_iter=1_000_000), X / wt, y, sw)
        sk_coef = sk.coef_ / wt
        ours = np_objective("squared", X, y, coef, b, np_enet(coef, a, l1_ratio, factors), sw)
        ref = np_objective(
            "squared", X, y, sk_coef, sk.intercept_, np_enet(sk_coef, a, l1_ratio, factors), sw
        )
        assert ours <= ref * (1 + 1e-6)
        if len(y) == N:  # one shape is enough here: a lane of a batch is the same fit as a single one
            looped = jr.solve(
                X, y, jr.SquaredLoss(), _penalty(float(a), l1_ratio, factors), sample_weight=sw, tol=1e-10
            )
            np.testing.assert_allclose(looped.coef, coef, rtol=1e-9, atol=1e-12 * np.abs(coef).max())
            np.testing.assert_allclose(looped.intercept, b, rtol=1e-9, atol=1e-12 * abs(y).max())
    perm = np.random.default_rng(0).permutation(P)
    permuted = jr.solve(
        X[:, perm],
        y,
        jr.SquaredLoss(),
        _penalty(jnp.asarray(alphas), l1_ratio, None if factors is None else factors[perm]),
        sample_weight=sw,
        tol=1e-10,
    )
    scale = float(np.abs(np.asarray(res.coef)).max()) + 1e-300
    np.testing.assert_allclose(permuted.coef, np.asarray(res.coef)[:, perm], atol=1e-4 * scale, rtol=0)


def _ar1_design(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    """Rows with AR(1)-correlated features, correlation 0.5 ** |i - j|."""
    E = rng.standard_normal((n, p))
    X = np.empty((n, p))
    X[:, 0] = E[:, 0]
    for j in range(1, p):
        X[:, j] = 0.5 * X[:, j - 1] + np.sqrt(0.75) * E[:, j]
    return X


def _median_split(n: int = 400, p: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """AR(1)-correlated features (rho 0.5); labels: a two-feature signal at SNR 3, split at its median."""
    rng = np.random.default_rng(seed)
    X = _ar1_design(rng, n, p)
    w = np.zeros(p)
    w[rng.choice(p, 2, replace=False)] = [1.5, -1.0]
    signal = X @ w
    noise = rng.standard_normal(n)
    z = signal + noise * np.linalg.norm(signal) / (3.0 * np.linalg.norm(noise))
    return X, (z > np.median(z)).astype(float)


def test_float32_stall_is_reported_early_and_float64_converges():
    """At a small alpha the logistic probabilities saturate in float32: the iterate stops changing
    above the tolerance.  The solver stops those lanes as STALLED, long before max_iter, and says
    so; float64 reaches the same tolerance on the same problem."""
    X, y = _median_split()
    loss = jr.LogisticLoss()
    amax = float(jr.alpha_max(X, y, loss))
    alphas = amax * np.array([1e-2, 1e-4])
    r64 = jr.solve(X, y, loss, jr.L1(alphas), tol=1e-5, max_iter=50_000)
    assert np.all(np.asarray(r64.converged)), (r64.n_iter, r64.gap)
    r32 = jr.solve(X.astype(np.float32), y.astype(np.float32), loss, jr.L1(alphas.astype(np.float32)),
                   tol=1e-5, max_iter=50_000)  # fmt: skip
    status = np.asarray(r32.status)
    assert status[0] == jr.Status.CONVERGED
    assert status[1] == jr.Status.STALLED and not bool(r32.converged[1])
    assert int(r32.n_iter[1]) < int(r64.n_iter[1])  # stopped before float64 even converged
    assert float(r32.gap[1]) > 10 * float(r64.gap[1])  # and it says where it stalled


def test_estimator_warns_that_rounding_stalled_the_fit():
    X, y = _median_split()
    amax = float(jr.alpha_max(X, y, jr.LogisticLoss()))
    from jaxreg.sklearn import LogisticRegression as JrLogisticRegression

    est = JrLogisticRegression(C=1.0 / (1e-4 * amax * len(y)), l1_ratio=1.0, max_iter=50_000, tol=1e-5)
    with pytest.warns(ConvergenceWarning, match="stopped decreasing"):
        est.fit(X.astype(np.float32), y)


def test_a_large_target_mean_changes_nothing_but_the_intercept():
    """y and y + 1000 differ only in the intercept: the gap (so the iterations) must not see the mean.

    With p > n the gap is computed on X itself; the conjugate's linear term then used the raw targets,
    and the rounding of the intercept (~eps * 1000) made the gaps meaningless at tol = 1e-10.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 25))
    y = 1e-2 * (X[:, 0] + 0.5 * rng.standard_normal(9))
    fractions = np.array([2.0, 0.5, 0.1])  # of alpha_max: the first is exactly zero
    base = jr.solve(X, y, jr.SquaredLoss(), jr.L1(fractions * float(jr.alpha_max(X, y))), tol=1e-10)
    shifted = jr.solve(X, y + 1e3, jr.SquaredLoss(), jr.L1(fractions * float(jr.alpha_max(X, y + 1e3))), tol=1e-10)
    assert np.all(np.asarray(base.converged)) and int(base.n_iter[0]) <= 1
    assert np.all(np.asarray(shifted.converged)), (shifted.n_iter, shifted.gap)
    assert int(shifted.n_iter[0]) <= 1  # alpha >= alpha_max: exact zeros at once
    np.testing.assert_allclose(shifted.gap, base.gap, atol=1e-10 * np.var(y))
    np.testing.assert_allclose(shifted.coef, base.coef, atol=1e-6)
    np.testing.assert_allclose(shifted.intercept, np.asarray(base.intercept) + 1e3, atol=1e-6)


@pytest.mark.parametrize("big", [1e2, 1e3, 1e6])
def test_logistic_with_intercept_and_a_column_on_a_large_scale(big):
    """``X = Z * scale`` is the problem on ``Z`` with penalty factors ``1 / scale``: same answer, similar effort.

    One step size for the intercept and the features froze the intercept when a large column set the
    step (1e6: unconverged after max_iter); the intercept now has its own metric.
    """
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((60, 6))
    y = (Z[:, 0] - Z[:, 1] + 0.5 * rng.standard_normal(60) > 0).astype(float)
    scale = np.array([1.0, big, 1.0, 1.0, 1.0, 1.0])
    X = Z * scale
    alpha = 0.1 * float(jr.alpha_max(X, y, jr.LogisticLoss()))
    ref = jr.solve(Z, y, jr.LogisticLoss(), jr.L1(alpha, weights=1 / scale), tol=1e-8)
    res = jr.solve(X, y, jr.LogisticLoss(), jr.L1(alpha), tol=1e-8)
    assert bool(ref.converged) and int(ref.n_iter) <= 100
    assert bool(res.converged), (int(res.n_iter), float(res.gap))
    assert int(res.n_iter) <= 10 * int(ref.n_iter)
    np.testing.assert_allclose(np.asarray(res.coef) * scale, ref.coef, atol=1e-6)
    np.testing.assert_allclose(res.intercept, ref.intercept, atol=1e-6)


# -- mixed precision: float32 working sets, float64 checks ----------------------------------------


def test_mixed_precision_is_chosen_for_float64_data_on_a_cpu_at_moderate_tol():
    from jaxreg.solvers import mixed_precision

    cpu = jax.default_backend() == "cpu"
    big = (200, 100)
    assert mixed_precision(np.float64, 1e-4, big) == cpu and mixed_precision(np.float64, 1e-5, big) == cpu
    assert not mixed_precision(np.float32, 1e-4, big)
    assert not mixed_precision(np.float64, 1e-6, big)  # below what float32 resolves with a margin
    assert not mixed_precision(np.float64, 1e-4, (60, 8))  # too small for the products to matter
    seen = []
    jax.jit(lambda t: seen.append(mixed_precision(np.float64, t, big)) or t)(1e-4)
    assert seen == [False]  # a traced tol is not known: float64 throughout


def _ar1(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) design and a response with four true features and unit noise."""
    rng = np.random.default_rng(seed)
    X = _ar1_design(rng, n, p)
    w = np.zeros(p)
    w[rng.choice(p, 4, replace=False)] = [2.0, -1.5, 1.0, 0.5]
    return X, X @ w + rng.standard_normal(n)


@pytest.mark.parametrize("tol", [1e-4, 1e-5])
@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_mixed_precision_paths_meet_tol_in_float64(loss_name, tol):
    """Working sets solved in float32 still give float64 solutions whose NumPy gap meets tol."""
    from test_properties import gap_scale, numpy_gap

    X, y = _ar1(80, 400)
    loss = jr.SquaredLoss()
    if loss_name == "logistic":
        y, loss = (y > np.median(y)).astype(float), jr.LogisticLoss()
    res = jr.path(X, y, loss, alphas=30, eps=1e-3 if loss_name == "squared" else 2e-2, tol=tol)
    assert res.coef.dtype == np.float64 and bool(np.all(np.asarray(res.converged)))
    n, p = X.shape
    s = np.full(n, 1.0 / n)
    scale = gap_scale(loss_name, y, s, True)
    for a, c, b, g in zip(*map(np.asarray, (res.alphas, res.coef, res.intercept, res.gap)), strict=True):
        ours, size = numpy_gap(loss_name, X, y, s, c, b, True, a, 1.0, np.ones(p))
        assert ours <= tol * scale * (1 + 1e-6) + 1e-12 * size
        assert ours == pytest.approx(g, rel=1e-6, abs=1e-12 * size)  # the reported gap is the float64 one
    assert int(np.count_nonzero(res.coef[-1])) > 30  # the late path needs more than the smallest bucket


@pytest.mark.parametrize("precision", ["mixed", "float64"])
@pytest.mark.parametrize("block_size", [1, 10])
def test_large_means_cost_neither_precision_nor_iterations(precision, block_size, monkeypatch):
    """Targets with a mean of 1e6 and columns offset by 1e4: float32 models of the working sets would
    lose the residuals in rounding; they are centered (or handed back to float64), and the solutions
    are those of the centered data.  In float64 (as on accelerators) the checks' products are those
    of the centered design: uncentered, ``X.T (s u)`` carried ``1e4 * sum_i s_i u_i``, rounding noise
    that held the gap above ``tol`` (blocks of 10 ran 10 000 iterations at the end of the path
    without converging, against about 1 000 for the data as given)."""
    from jaxreg import solvers as S

    if precision == "float64":
        monkeypatch.setattr(S, "_MIXED_MIN_TOL", 1.0)
    X, y = _ar1(60, 300, seed=1)
    mixed = precision == "mixed" and jax.default_backend() == "cpu"
    assert S.mixed_precision(np.float64, 1e-5, X.shape) == mixed
    grid = np.asarray(jr.path(X, y, alphas=20).alphas)
    base = jr.path(X, y, alphas=grid, tol=1e-5, block_size=block_size)
    moved = jr.path(X + 1e4, y + 1e6, alphas=grid, tol=1e-5, block_size=block_size)
    assert bool(np.all(np.asarray(base.converged))) and bool(np.all(np.asarray(moved.converged)))
    assert int(np.sum(moved.n_iter)) <= 1.2 * int(np.sum(base.n_iter)) + 100, (base.n_iter, moved.n_iter)
    assert float(np.max(moved.gap)) <= 1e-5 * np.var(y)
    # both are within their gaps of the same optimum of the centered problem
    Xc, yc = X - X.mean(0), y - y.mean()
    for a, c0, c1, g0, g1 in zip(grid, base.coef, moved.coef, base.gap, moved.gap, strict=True):
        P = lambda c: 0.5 * np.mean((yc - Xc @ np.asarray(c)) ** 2) + a * np.abs(np.asarray(c)).sum()  # noqa: E731
        assert abs(P(c1) - P(c0)) <= float(g0) + float(g1) + 1e-12


def test_accelerator_steps_on_large_means_take_the_iterations_of_the_data_as_given(monkeypatch):
    """On accelerators the squared-loss steps leave the centering's ``c sum(G)`` out of the gradient
    (the intercept in closed form makes it rounding): with the targets centered first
    (``run``'s ``y_off``) that rounding is of the centered targets, and a path on targets of mean 1e6
    and columns offset by 1e4 takes the iterations of the data as given (when written: 1410 and
    1410; 1540 with the targets as given), to the same gaps."""
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    X, y = _ar1(60, 300, seed=1)
    grid = np.asarray(jr.path(X, y, alphas=20).alphas)
    base = jr.path(X, y, alphas=grid, tol=1e-5, block_size=1)
    moved = jr.path(X + 1e4, y + 1e6, alphas=grid, tol=1e-5, block_size=1)
    assert bool(np.all(np.asarray(base.converged))) and bool(np.all(np.asarray(moved.converged)))
    assert int(np.sum(moved.n_iter)) <= 1.03 * int(np.sum(base.n_iter)), (base.n_iter, moved.n_iter)
    assert float(np.max(moved.gap)) <= 1e-5 * np.var(y)


@pytest.mark.parametrize("loss_name", ["logistic", "poisson", "multinomial"])
@pytest.mark.parametrize("precision", ["mixed", "float64"])
def test_large_column_means_with_a_free_intercept(loss_name, precision, monkeypatch):
    """Columns offset by 1e3 and 1e4, with an intercept fitted as a free variable: the gap is that of
    the centered problem, whose intercept stays small, so the paths converge in the iterations of
    the data as given, to the same objective within their gaps.  With the uncentered problem's gap,
    whose box for the intercept grows with ``|b| ~ 1e3 |w|``, blocks of 10 stalled at 5000 times
    ``tol`` (L1-logistic, columns offset by 1e3)."""
    from jaxreg import solvers as S

    if precision == "float64":
        monkeypatch.setattr(S, "_MIXED_MIN_TOL", 1.0)
    X, z = _ar1(200, 300, seed=1)
    rng = np.random.default_rng(1)
    y, loss = {
        "logistic": ((z > np.median(z)).astype(float), jr.LogisticLoss()),
        "poisson": (rng.poisson(np.exp(0.3 * z / z.std())).astype(float), jr.PoissonLoss()),
        "multinomial": (np.digitize(z, np.quantile(z, [1 / 3, 2 / 3])).astype(float), jr.MultinomialLoss(3)),
    }[loss_name]
    grid = np.asarray(jr.path(X, y, loss, alphas=20, eps=1e-2).alphas)
    fit = functools.partial(jr.path, y=y, loss=loss, alphas=grid, tol=1e-5, block_size=10, max_iter=20_000)
    base = fit(X)
    assert bool(np.all(np.asarray(base.converged)))
    for offset in (1e3, 1e4):
        moved = fit(X + offset)
        assert bool(np.all(np.asarray(moved.converged))), (offset, moved.n_iter)
        assert int(np.sum(moved.n_iter)) <= 1.2 * int(np.sum(base.n_iter)) + 100, (base.n_iter, moved.n_iter)
        # the same optimum: equal objectives within the gaps
        for a, c0, b0, c1, b1, g0, g1 in zip(grid, base.coef, base.intercept, moved.coef, moved.intercept,
                                              base.gap, moved.gap, strict=True):  # fmt: skip
            c0, c1, b0, b1 = (np.asarray(t, float) for t in (c0, c1, b0, b1))
            P0 = np.mean(np.asarray(loss(y, X @ c0 + b0))) + a * np.abs(c0).sum()
            P1 = np.mean(np.asarray(loss(y, (X + offset) @ c1 + b1))) + a * np.abs(c1).sum()
            assert abs(P1 - P0) <= float(g0) + float(g1) + 1e-9 * (1 + abs(P0)), (offset, a)


@pytest.mark.parametrize("tol", [1e-5, 1e-6])  # float32 working sets, and float64 throughout
def test_lasso_buckets_end_below_all_features_and_what_they_miss_is_solved_in_float64(tol, monkeypatch):
    """With few samples the lasso's buckets stop short of all features (a lasso solution has at most
    n_samples nonzeros); a working set that outgrows them is solved on all features in float64, and
    the path meets its tolerance in NumPy as the one with every bucket does.  The program holds no
    solve on all features at first: the path is solved again with it only when some lane needed it."""
    import importlib

    from test_properties import gap_scale, numpy_gap

    from jaxreg import solvers as S

    programs = importlib.import_module("jaxreg.path")._path_program

    def compiles(run):  # the result, and the programs compiled for it
        before = programs._cache_size()
        return run(), programs._cache_size() - before

    assert S.capacities(jr.L1(), 500, 5000) == (256, 512, 1024)  # the three largest that fit
    assert S.capacities(jr.L1(), 500, 20000) == (256, 512, 1024)  # 4096 would be dead code
    assert S.capacities(jr.L1(), 2000, 5000) == (256, 512, 1024, 5000)
    assert S.capacities(jr.L1(), 500, 200) == (64, 200)
    assert S.capacities(jr.ElasticNet(l1_ratio=0.9), 500, 5000)[-1] == 5000  # more than n nonzeros
    X, y = _ar1(80, 400)
    n, p = X.shape
    mixed = S.mixed_precision(np.float64, tol, X.shape)
    assert mixed == (tol == 1e-5 and jax.default_backend() == "cpu")  # float64 alone on accelerators
    # max_iter makes the programs this test's own
    full, n_programs = compiles(lambda: jr.path(X, y, alphas=30, tol=tol, max_iter=9_999))
    assert n_programs == 1  # every bucket: float32 finishes every solve, no float64 fallback
    # one bucket of 64, too small for the late path: its working sets go to float64 on all features
    monkeypatch.setattr(S, "capacities", lambda penalty, n_samples, n_features: (64,))
    s = np.full(n, 1.0 / n)
    scale = gap_scale("squared", y, s, True)
    for block_size in (1, 5):  # one lane; five lanes (with a float32 solve on all features again)
        fit = functools.partial(jr.path, X, y, alphas=np.asarray(full.alphas), tol=tol, max_iter=9_999)
        res, n_programs = compiles(lambda: fit(block_size=block_size))  # noqa: B023
        # one lane: compiled without, then with the solve on all features in float64 (five lanes have
        # a solve on all features among their buckets, which holds them)
        assert n_programs == (2 if block_size == 1 else 1), block_size
        assert bool(np.all(np.asarray(res.converged)))
        assert int(np.count_nonzero(res.coef[-1])) > 64  # more than the bucket holds
        for a, c, b, c0, b0 in zip(*map(np.asarray, (res.alphas, res.coef, res.intercept, full.coef,
                                                      full.intercept)), strict=True):  # fmt: skip
            ours, size = numpy_gap("squared", X, y, s, c, b, True, a, 1.0, np.ones(p))
            assert ours <= tol * scale * (1 + 1e-6) + 1e-12 * size
            np.testing.assert_allclose(c, c0, atol=1e-2 * np.abs(c0).max() + 1e-8)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="mixed precision is for CPUs only")
@pytest.mark.parametrize("case", ["logistic-saturated", "huber-large-mean"])
def test_mixed_precision_agrees_with_float64_throughout(case, monkeypatch):
    """Where float32 stalls (saturated logistic probabilities) or would lose the residuals (a target
    mean of 1e5), mixed precision hands over to float64 or centers: it converges where float64 does,
    to the same objective within the gaps, with comparable effort."""
    from jaxreg import solvers as S

    X, y = _median_split()
    loss = jr.LogisticLoss()
    if case == "huber-large-mean":
        X, y = _ar1(80, 300, seed=3)
        y, loss = y + 1e5, jr.HuberLoss()
    alphas = float(jr.alpha_max(X, y, loss)) * np.array([1e-1, 1e-2, 1e-4 if case.startswith("logistic") else 1e-3])
    assert S.mixed_precision(np.float64, 1e-4, X.shape)
    mixed = jr.solve(X, y, loss, jr.L1(alphas), tol=1e-4, max_iter=50_000)
    monkeypatch.setattr(S, "_MIXED_MIN_TOL", 1.0)
    assert not S.mixed_precision(np.float64, 1e-4, X.shape)
    plain = jr.solve(X, y, loss, jr.L1(alphas), tol=1e-4, max_iter=50_000)
    assert np.all(np.asarray(plain.converged)) and np.all(np.asarray(mixed.converged)), (mixed.status, mixed.n_iter)
    primal = jax.vmap(lambda c, b, a: jnp.mean(loss(y, X @ c + b)) + a * jnp.sum(jnp.abs(c)))
    P_mixed = np.asarray(primal(mixed.coef, mixed.intercept, alphas))
    P_plain = np.asarray(primal(plain.coef, plain.intercept, alphas))
    assert np.all(np.abs(P_mixed - P_plain) <= np.asarray(mixed.gap) + np.asarray(plain.gap) + 1e-12)
    assert np.all(np.asarray(mixed.n_iter) <= 5 * np.asarray(plain.n_iter) + 100)


@pytest.mark.parametrize("loss_name", ["logistic", "multinomial", "poisson", "huber"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_uncentered_columns_with_a_fitted_intercept(loss_name, dtype):
    """Columns with mean 3 and a fitted intercept: the design is centered implicitly, so a path
    converges in about the iterations of centered data (without centering, logistic and multinomial
    ran 10 000 iterations at 0.005 alpha_max without converging), to the same solution: equal
    coefficients and the intercept moved by ``mean(X) @ coef``.  Small data (no mixed precision)."""
    rng = np.random.default_rng(0)
    n, p = 200, 100
    Xc = rng.standard_normal((n, p))
    z = Xc[:, :5].sum(1)
    noise = rng.standard_normal(n)
    y, loss = {
        "logistic": ((z + noise > 0).astype(float), jr.LogisticLoss()),
        "multinomial": (np.digitize(z + noise, [-1.0, 1.0]).astype(float), jr.MultinomialLoss(n_classes=3)),
        "poisson": (rng.poisson(np.exp(0.3 * z)).astype(float), jr.PoissonLoss()),
        "huber": (z + noise, jr.HuberLoss()),
    }[loss_name]
    Xc = Xc - Xc.mean(0)
    X = Xc + 3.0
    tol = 1e-6 if dtype == np.float64 else 1e-4
    alphas = float(jr.alpha_max(X, y, loss)) * np.geomspace(1, 0.005, 8)
    moved = jr.path(X.astype(dtype), y, loss, alphas=alphas, tol=tol)
    base = jr.path(Xc.astype(dtype), y, loss, alphas=alphas, tol=tol)
    assert bool(np.all(np.asarray(moved.converged))), (moved.n_iter, moved.gap)
    assert bool(np.all(np.asarray(base.converged)))
    assert int(np.sum(moved.n_iter)) <= 2 * int(np.sum(base.n_iter)) + 200
    # same objective within the gaps, and the intercepts of one design are those of the other
    K = loss.n_outputs
    for a, c0, c1, b0, b1, g0, g1 in zip(alphas, base.coef, moved.coef, base.intercept, moved.intercept,
                                         base.gap, moved.gap, strict=True):  # fmt: skip
        c0, c1 = np.asarray(c0, float).reshape(p, K), np.asarray(c1, float).reshape(p, K)
        b1_c = np.asarray(b1, float).reshape(K) + 3.0 * c1.sum(0)  # intercept of the centered design
        obj = lambda c, b: float(np.mean(loss(y, jnp.asarray((Xc @ c + b).squeeze())))) + a * np.abs(c).sum()  # noqa: E731
        slack = 1e-6 if dtype == np.float32 else 1e-12  # float32 objectives, float64 rounding
        assert abs(obj(c1, b1_c) - obj(c0, np.asarray(b0, float).reshape(K))) <= float(g0) + float(g1) + slack


@pytest.mark.parametrize("buckets", [False, True])
@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_both_loop_structures_take_the_same_steps(loss_name, buckets, monkeypatch):
    """On a CPU the checks of FISTA and of the working-set loop are compiled once (a check, then a
    round of steps or an inner solve unless every lane is done); on an accelerator they stay before
    the loop and after each round.  Same iterations, same solutions."""
    from jaxreg import solvers as S

    X, y = _ar1(60, 200 if buckets else 40)
    loss = jr.SquaredLoss()
    if loss_name == "logistic":
        y, loss = (y > np.median(y)).astype(float), jr.LogisticLoss()
    n, p = X.shape
    a_max = float(jr.alpha_max(X, y, loss))
    pen = jr.L1(jnp.asarray(a_max * np.array([0.5, 0.1, 0.02]))).broadcast((3,), p, X.dtype)
    Xj, yj, s = jnp.asarray(X), jnp.asarray(y), jnp.full((n, 3), 1.0 / n)
    W0, b0 = jnp.zeros((p, 3, 1)), jnp.zeros((3, 1))
    cfg = S._Config("closed" if loss_name == "squared" else "grad", 5000, 10, (32, 64) if buckets else ())

    def solve():
        su = S.setup(Xj, yj, s, loss, cfg.intercept)
        return S.run(Xj, yj, s, loss, pen, W0, b0, su, jnp.asarray(1e-10), cfg)

    cpu = jax.jit(solve)()
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    other = jax.jit(solve)()
    assert np.all(np.asarray(cpu.status) == S.Status.CONVERGED)
    np.testing.assert_array_equal(other.n_iter, cpu.n_iter)
    np.testing.assert_array_equal(other.status, cpu.status)
    np.testing.assert_allclose(other.W, cpu.W, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["design", "gram", "logistic"])
def test_a_solve_from_known_products_is_the_same_solve(kind):
    """``run(..., known=known_at(W0, b0))`` skips its first two passes over X and changes nothing else.

    Down a path each alpha's first check takes ``solvers.Known`` from the check before; from the
    same products the solve must be the same, bit for bit, and its first check must certify a warm
    start that is already optimal.
    """
    from jaxreg import solvers as S

    rng = np.random.default_rng(3)
    n, p = (120, 30) if kind == "gram" else (40, 120)
    X = rng.standard_normal((n, p)) + 0.5
    w = np.zeros(p)
    w[:4] = [1.5, -2.0, 1.0, 0.5]
    z = X @ w + 0.3 * rng.standard_normal(n)
    loss = jr.LogisticLoss() if kind == "logistic" else jr.SquaredLoss()
    y = (z > np.median(z)).astype(float) if kind == "logistic" else z
    mode = "grad" if kind == "logistic" else "closed"
    a_max = float(jr.alpha_max(X, y, loss))
    warm = jr.path(X, y, loss, alphas=a_max * np.array([0.3, 0.1]), tol=1e-9)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    s = jnp.full((n, 2), 1.0 / n)
    W0 = jnp.repeat(jnp.asarray(warm.coef[1])[:, None, None], 2, axis=1)
    b0 = jnp.repeat(jnp.asarray(warm.intercept[1]).reshape(1, 1), 2, axis=0)
    pen = jr.L1(jnp.asarray(a_max * np.array([0.1, 0.07])))  # lane 0: W0 is optimal already
    cfg = S._Config(mode, 5000, 10, S.capacities(jr.L1(), n, p))
    gram = S._gram_model(Xj, yj, s[:, :1], mode, 2) if S.uses_gram(loss, mode, n, p) else None
    assert (gram is not None) == (kind == "gram")
    means = None if gram is not None else S.rmatmul(Xj, s[:, :1])  # the centers, as a path passes them

    @functools.partial(jax.jit, static_argnames="with_known")
    def solve(with_known):
        su = S.setup(Xj, yj, s, loss, mode)
        known = S.known_at(Xj, yj, s, loss, mode, W0, b0, gram, means) if with_known else None
        return S.run(Xj, yj, s, loss, pen, W0, b0, su, jnp.asarray(1e-8), cfg, gram=gram, means=means,
                     known=known)

    ref, got = solve(False), solve(True)
    for name in ("W", "b", "n_iter", "crit", "status"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    assert int(got.n_iter[0]) == 0 and int(got.status[0]) == S.Status.CONVERGED
    assert int(got.n_iter[1]) > 0 and int(got.status[1]) == S.Status.CONVERGED


# -- how the programs are compiled -----------------------------------------------------------------


def test_cpu_programs_keep_each_sum_one_kernel(monkeypatch):
    """On a CPU, jaxreg's programs compile without XLA's tree_reduction_rewriter; a user's XLA_FLAGS
    that disable other passes still hold for them."""
    from jaxreg import _precision

    x = jnp.ones(1000, jnp.float32)
    sumsq = lambda v: jnp.sum(v * v)
    plain = jax.jit(sumsq).lower(x).compile().as_text()
    ours = _precision.compiled()(sumsq).lower(x).compile().as_text()
    cpu = jax.default_backend() == "cpu"
    assert ("reduce-window" in plain) == cpu  # what XLA:CPU does by default
    assert "reduce-window" not in ours
    assert float(_precision.compiled()(sumsq)(x)) == 1000.0

    monkeypatch.setenv("XLA_FLAGS", "--xla_disable_hlo_passes=while-loop-unroller")
    _precision._options_for.cache_clear()
    try:
        passes = dict(_precision._options()).get("xla_disable_hlo_passes", "")
    finally:
        monkeypatch.undo()
        _precision._options_for.cache_clear()
    assert ("while-loop-unroller" in passes) == cpu and ("tree_reduction_rewriter" in passes) == cpu


def test_all_features_padded_to_an_aligned_width_on_accelerators(monkeypatch):
    """On accelerators a solve on all features runs on ``X`` padded with zero columns up to a
    multiple of ``_ALIGN`` (so that XLA:GPU's matrix products need not pad ``X`` at every step): the
    padding's coefficients stay zero, and the fits are those without it, for the design and the Gram
    matrix, squared and logistic loss, a dense penalty and working sets."""
    from jaxreg import solvers as S

    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    align0 = S._ALIGN
    assert 150 % align0 and 90 % align0  # the widths below are padded
    widths = set()
    fista = S.fista

    def spy(model, penalty, W0, *args, **kwargs):
        widths.add(W0.shape[0])  # at trace time
        return fista(model, penalty, W0, *args, **kwargs)

    monkeypatch.setattr(S, "fista", spy)
    fits = {}
    for align in (align0, 1):
        monkeypatch.setattr(S, "_ALIGN", align)
        jax.clear_caches()  # read when the solver is traced
        out = []
        for n, p in [(60, 150), (200, 90)]:  # the design (p > n) and the Gram matrix
            rng = np.random.default_rng(n)
            X = rng.standard_normal((n, p)) + 0.5
            y = X[:, 0] - 2 * X[:, 3] + rng.standard_normal(n)
            out.append(jr.path(X, y, alphas=6, tol=1e-8))
            out.append(jr.path(X, (y > np.median(y)).astype(float), jr.LogisticLoss(), alphas=6, tol=1e-8))
            ridge = jr.ElasticNet(alpha=np.array([0.1, 0.01]), l1_ratio=0.0)  # no working sets
            out.append(jr.solve(X, y, jr.SquaredLoss(), ridge, tol=1e-10))
        fits[align] = out
    jax.clear_caches()
    assert {-(-150 // align0) * align0, -(-90 // align0) * align0} <= widths, widths  # solves on the padding
    for padded, plain in zip(fits[align0], fits[1], strict=True):
        assert bool(np.all(np.asarray(padded.converged))) and bool(np.all(np.asarray(plain.converged)))
        assert np.asarray(padded.coef).shape == np.asarray(plain.coef).shape
        scale = float(np.abs(np.asarray(plain.coef)).max())
        np.testing.assert_allclose(padded.coef, plain.coef, atol=1e-3 * scale)


def test_samples_padded_to_an_aligned_count_on_accelerators(monkeypatch):
    """On accelerators a working-set solve on a design runs on its samples padded with zero rows of
    zero weight up to a multiple of ``_ALIGN_SAMPLES`` (so that XLA:GPU's products need not pad ``X``
    and the gradient's weights at every step): the fits are those without the padding, for each loss,
    with and without an intercept, with sample weights, with working sets and on all features."""
    from jaxreg import solvers as S

    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    align0 = S._ALIGN_SAMPLES
    n, p = 50, 120
    assert n % align0  # padded below
    rows = set()
    fista = S.fista

    def spy(model, *args, **kwargs):
        rows.add(model.X.shape[0] if isinstance(model, S._Design) else None)  # at trace time
        return fista(model, *args, **kwargs)

    monkeypatch.setattr(S, "fista", spy)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, p)) + 0.5
    z = X[:, 0] - 2 * X[:, 3] + 0.5 * X[:, 7]
    noise = rng.standard_normal(n)
    w = rng.uniform(0.5, 2.0, n)
    cases = [
        (z + noise, jr.SquaredLoss(), {}),
        (z + noise, jr.SquaredLoss(), {"fit_intercept": False, "sample_weight": w}),
        ((z + noise > 0).astype(float), jr.LogisticLoss(), {"sample_weight": w}),
        (rng.poisson(np.exp(0.3 * z / z.std())).astype(float), jr.PoissonLoss(), {}),
        (np.digitize(z + noise, [-1.0, 1.0]).astype(float), jr.MultinomialLoss(3), {}),
        (z + noise, jr.HuberLoss(), {"fit_intercept": False}),
    ]
    fits = {}
    for align in (align0, 1):
        monkeypatch.setattr(S, "_ALIGN_SAMPLES", align)
        jax.clear_caches()  # read when the solver is traced
        fits[align] = [jr.path(X, y, loss, alphas=5, eps=1e-2, tol=1e-8, **kw) for y, loss, kw in cases]
        ridge = jr.ElasticNet(alpha=np.array([0.1, 0.01]), l1_ratio=0.0)  # all features, no working sets
        fits[align].append(jr.solve(X, z + noise, jr.SquaredLoss(), ridge, tol=1e-10))
    jax.clear_caches()
    assert -(-n // align0) * align0 in rows and n in rows, rows  # solves on the padding, and without
    for padded, plain in zip(fits[align0], fits[1], strict=True):
        assert bool(np.all(np.asarray(padded.converged))) and bool(np.all(np.asarray(plain.converged)))
        assert np.asarray(padded.coef).shape == np.asarray(plain.coef).shape
        scale = float(np.abs(np.asarray(plain.coef)).max())
        np.testing.assert_allclose(padded.coef, plain.coef, atol=1e-3 * scale)
        np.testing.assert_allclose(padded.intercept, plain.intercept, atol=1e-3 * max(scale, 1.0))


def test_squared_loss_step_excess_is_the_quadratic_remainder():
    """A squared-loss step on the design is accepted on ``F(x+) - F(y) - <grad F(y), x+ - y>``
    computed from the images (``_Design.step_excess``; on accelerators with the intercept from the
    same reduction over the samples, ``forward_excess``).  Both equal the remainder computed in
    exact rational arithmetic, ``sum_i s_i ((X_c d)_i)**2 / 2``, to rounding, also with targets whose
    mean is 1e6 and columns whose means are 3, and give ``forward``'s image and intercept."""
    from fractions import Fraction

    from jaxreg import solvers as S

    rng = np.random.default_rng(5)
    n, p, B = 40, 12, 3
    X = rng.standard_normal((n, p)) + 3.0
    y = 1e6 + rng.standard_normal(n)
    w = rng.random(n) + 0.5
    s1 = w / w.sum()
    s = jnp.asarray(np.repeat(s1[:, None], B, axis=1))
    c = s1 @ X
    center = jnp.asarray(np.repeat(c[:, None], B, axis=1))
    Wy = rng.standard_normal((p, B, 1))
    Wn = Wy + 1e-3 * rng.standard_normal((p, B, 1))  # a step's change
    for mode, cen in (("closed", center), ("none", None)):
        model = S._Design(jnp.asarray(X), jnp.asarray(y), s, jr.SquaredLoss(), mode, cen)
        assert model.quadratic
        Zy, by = model.forward(jnp.asarray(Wy), jnp.zeros((B, 1)))
        Zn, bn = model.forward(jnp.asarray(Wn), jnp.zeros((B, 1)))
        got = np.asarray(model.step_excess(Zn, Zy))
        Xc = X - c if mode == "closed" else X  # the closed-form intercept centers the columns
        for j in range(B):
            d = [Fraction(v) for v in (Wn - Wy)[:, j, 0]]
            u = [sum(Fraction(Xc[i, k]) * d[k] for k in range(p)) for i in range(n)]
            exact = float(sum(Fraction(s1[i]) * u[i] ** 2 for i in range(n)) / 2)
            assert abs(got[j] - exact) <= 1e-6 * exact, (mode, j, got[j], exact)
        if mode == "closed":
            cw = jnp.einsum("kb,kbo->bo", center, jnp.asarray(Wn))
            # the last accepted intercept; the centered columns' closed-form intercept is the
            # targets' mean whatever W, so its change over a step is rounding
            shift = by + 1e-8
            Z1, b1, e1 = model.forward_excess(jnp.asarray(Wn), jnp.zeros((B, 1)), cw, shift, Zy)
            np.testing.assert_allclose(b1, bn, rtol=1e-14)
            np.testing.assert_allclose(Z1, Zn, rtol=1e-14)
            np.testing.assert_allclose(e1, got, rtol=1e-6)
    # other losses keep F: no quadratic model
    assert not S._Design(jnp.asarray(X), jnp.asarray((y > 1e6) * 1.0), s, jr.LogisticLoss(), "grad").quadratic
