"""Implicit derivatives of ``jr.solve`` against central finite differences, and what is built on them.

Finite differences need solutions far more accurate than the step: every fit here is solved to a
duality gap of ``1e-14`` times the null deviance (the coefficients then agree with the exact solution
to about ``1e-13``), and the central step is ``1e-6`` relative to the perturbed input.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.linear_model import LassoLarsIC, lars_path

import jaxreg as jr
from jaxreg import implicit

N, P = 40, 12
TOL = 1e-14
MAX_ITER = 50_000
STEP = 1e-6
RTOL = 1e-4
GROUPS = tuple(j // 3 for j in range(P))


@functools.cache
def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    X[:, 1] += 0.5 * X[:, 0]
    beta = np.zeros(P)
    beta[:4] = [1.5, -1.0, 0.8, 0.5]
    z = X @ beta
    if kind == "real":
        y = z + 0.5 * rng.standard_normal(N)
    elif kind == "binary":
        y = (rng.random(N) < 1 / (1 + np.exp(-z))).astype(float)
    elif kind == "labels":
        logits = np.stack([z, -z, 0.5 * X[:, 4]], axis=1)
        y = np.array([rng.choice(3, p=np.exp(l) / np.exp(l).sum()) for l in logits], dtype=float)
    else:
        y = rng.poisson(np.exp(0.3 * z)).astype(float)
    sw = rng.uniform(0.5, 1.5, N)
    return X, y, sw


# name -> (loss, kind of target, penalty from its hyper-parameters, hyper-parameters); every alpha
# leaves most coefficients at zero (Poisson-L2 has none).
CASES = {
    "lasso": (
        jr.SquaredLoss(), "real",
        lambda h: jr.L1(alpha=h["alpha"], weights=h["weights"]),
        {"alpha": 0.3, "weights": np.r_[0.0, np.linspace(0.5, 1.5, P - 1)]},
    ),
    "enet": (
        jr.SquaredLoss(), "real",
        lambda h: jr.ElasticNet(alpha=h["alpha"], l1_ratio=h["l1_ratio"], weights=h["weights"]),
        {"alpha": 0.4, "l1_ratio": 0.7, "weights": np.linspace(0.5, 1.5, P)},
    ),
    "group": (
        jr.SquaredLoss(), "real",
        lambda h: jr.GroupLasso(alpha=h["alpha"], groups=GROUPS, weights=h["weights"]),
        {"alpha": 0.25, "weights": np.array([1.0, 0.8, 1.2, 1.0])},
    ),
    "logistic_l1": (
        jr.LogisticLoss(), "binary",
        lambda h: jr.L1(alpha=h["alpha"], weights=h["weights"]),
        {"alpha": 0.08, "weights": np.linspace(0.5, 1.5, P)},
    ),
    "poisson_l2": (
        jr.PoissonLoss(), "count",
        lambda h: jr.L2(alpha=h["alpha"], weights=h["weights"]),
        {"alpha": 0.5, "weights": np.linspace(0.5, 1.5, P)},
    ),
    "huber_positive_l1": (
        jr.HuberLoss(delta=0.5), "real",
        lambda h: jr.L1(alpha=h["alpha"], weights=h["weights"], positive=True),
        {"alpha": 0.05, "weights": np.linspace(0.5, 1.5, P)},
    ),
    "multinomial_l1": (
        jr.MultinomialLoss(n_classes=3), "labels",
        lambda h: jr.L1(alpha=h["alpha"], weights=h["weights"]),
        {"alpha": 0.05, "weights": np.linspace(0.5, 1.5, P)},
    ),
}  # fmt: skip
INPUTS = ("alpha", "l1_ratio", "weights", "X", "y", "sample_weight")


def _solve(name: str, hyper: dict, X, y, sw, **kw) -> jr.Result:
    loss, _, make, _ = CASES[name]
    kw = {"tol": TOL, "max_iter": MAX_ITER, **kw}
    return jr.solve(X, y, loss, make(hyper), sample_weight=sw, **kw)


def _problem(name: str, **hyper) -> dict:
    _, kind, _, default = CASES[name]
    X, y, sw = _data(kind)
    hyper = {k: jnp.asarray(v) for k, v in {**default, **hyper}.items()}
    return {"alpha": hyper.pop("alpha"), "hyper": hyper, "X": jnp.asarray(X), "y": jnp.asarray(y),
            "sample_weight": jnp.asarray(sw)}  # fmt: skip


def _hyper(problem: dict) -> dict:
    return {"alpha": problem["alpha"], **problem["hyper"]}


def _flat_solution(name: str, problem: dict) -> jax.Array:
    res = _solve(name, _hyper(problem), problem["X"], problem["y"], problem["sample_weight"])
    return jnp.concatenate([res.coef.ravel(), res.intercept.ravel()])


def _replace(problem: dict, what: str, value) -> dict:
    if what in problem:
        return {**problem, what: value}
    return {**problem, "hyper": {**problem["hyper"], what: value}}


def _get(problem: dict, what: str):
    return problem[what] if what in problem else problem["hyper"][what]


def _direction(what: str, base, seed: int):
    if what == "alpha":
        return base * jnp.ones_like(base)
    d = jnp.asarray(np.random.default_rng(seed).standard_normal(np.shape(base)))
    if what in ("weights", "sample_weight"):
        return d * base  # keeps zero weights at zero and every weight non-negative
    return d


def _check_against_fd(name: str, problem: dict, inputs, *, seed: int = 1) -> None:
    """For each input: the JVP, and the gradient of a random projection, against central differences.

    The gradient is taken once with respect to the whole problem (every input at once).
    """
    primal = _flat_solution(name, problem)
    c = jnp.asarray(np.random.default_rng(seed + 100).standard_normal(primal.shape))
    grads = jax.grad(lambda pr: jnp.dot(c, _flat_solution(name, pr)))(problem)
    for k, what in enumerate(inputs):
        solution = functools.partial(_flat_solution, name)
        if what == "y" and CASES[name][1] == "binary":
            # 0/1 labels are validated only when concrete: the soft labels of finite differences run jitted
            solution = jax.jit(solution)
        base = _get(problem, what)
        d = _direction(what, base, seed + k)
        if what == "y" and CASES[name][1] == "count":
            d = d * (base > 0)  # counts stay non-negative
        fd = solution(_replace(problem, what, base + STEP * d)) - solution(
            _replace(problem, what, base - STEP * d)
        )
        fd = fd / (2 * STEP)
        assert float(jnp.linalg.norm(fd)) > 1e-3, f"{what}: the finite difference vanishes, an empty check"
        tangent = jax.tree_util.tree_map(jnp.zeros_like, problem)
        _, jd = jax.jvp(functools.partial(_flat_solution, name), (problem,), (_replace(tangent, what, d),))
        err = float(jnp.linalg.norm(jd - fd) / jnp.linalg.norm(fd))
        assert err <= RTOL, f"{what}: jvp vs central differences, relative error {err:.2e}: {jd} vs {fd}"
        g = _get(grads, what)
        assert g.shape == jnp.shape(base)
        lhs, rhs = float(jnp.vdot(g, d)), float(jnp.dot(c, fd))
        err = abs(lhs - rhs) / float(jnp.linalg.norm(c) * jnp.linalg.norm(fd))
        assert err <= RTOL, f"{what}: grad vs central differences, relative error {err:.2e}"


# -- every gradient against central finite differences ------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_derivatives_match_finite_differences(name):
    _, kind, _, default = CASES[name]
    problem = _problem(name)
    res = _solve(name, _hyper(problem), problem["X"], problem["y"], problem["sample_weight"])
    assert bool(res.converged)
    if name != "poisson_l2":
        assert int(jnp.sum(res.coef != 0)) <= res.coef.size // 2  # mostly-zero solutions
    # class labels are not differentiable
    inputs = [w for w in INPUTS if (w in problem or w in default) and not (w == "y" and kind == "labels")]
    _check_against_fd(name, problem, inputs)


def _support(name, problem, alpha):
    res = _solve(
        name, _hyper({**problem, "alpha": alpha}), problem["X"], problem["y"], problem["sample_weight"]
    )
    return tuple(np.flatnonzero(np.asarray(res.coef)))


def _kink(name, problem):
    """An ``alpha`` where the support changes, located by bisection to a relative width of 1e-8."""
    hi = float(problem["alpha"])
    lo = 0.8 * hi
    s_hi = _support(name, problem, hi)
    while _support(name, problem, lo) == s_hi:
        lo *= 0.8
    while hi / lo > 1 + 1e-8:
        mid = float(np.sqrt(lo * hi))
        if _support(name, problem, mid) == s_hi:
            hi = mid
        else:
            lo = mid
    return float(np.sqrt(lo * hi))


@pytest.mark.parametrize("name", ["lasso", "enet", "group", "logistic_l1"])
def test_derivatives_near_a_support_change(name):
    problem = _problem(name)
    kink = _kink(name, problem)
    above, below = kink * (1 + 1e-3), kink * (1 - 1e-3)
    assert _support(name, problem, above) != _support(name, problem, below)
    for alpha in (above, below):
        pr = {**problem, "alpha": jnp.asarray(alpha)}
        _check_against_fd(name, pr, ("alpha", "X", "sample_weight"), seed=10)


# -- jit, vmap, batched penalties, float32 ------------------------------------------------------


def _validation_error(alpha, problem, X_val, y_val, **kw):
    res = _solve("lasso", {"alpha": alpha, **problem["hyper"]}, problem["X"], problem["y"],
                 problem["sample_weight"], **kw)  # fmt: skip
    pred = jnp.einsum("np,...p->...n", X_val, res.coef) + res.intercept[..., None]
    return jnp.mean((y_val - pred) ** 2, axis=-1)


@pytest.fixture(scope="module")
def validation():
    problem = _problem("lasso")
    X_val, y_val, _ = _data("real", seed=1)
    alphas = jnp.geomspace(0.6, 0.01, 16)
    grad = jax.grad(_validation_error)
    loop = jnp.stack([grad(a, problem, X_val, y_val) for a in alphas])
    return problem, jnp.asarray(X_val), jnp.asarray(y_val), alphas, loop


def test_vmap_over_16_alphas_equals_a_loop_under_jit(validation):
    problem, X_val, y_val, alphas, loop = validation
    assert float(jnp.min(jnp.abs(loop))) > 0
    vmapped = jax.jit(jax.vmap(jax.grad(_validation_error), in_axes=(0, None, None, None)))
    np.testing.assert_allclose(vmapped(alphas, problem, X_val, y_val), loop, rtol=1e-7, atol=1e-12)


def test_batched_penalty_gradient_equals_a_loop(validation):
    problem, X_val, y_val, alphas, loop = validation
    batched = jax.grad(lambda a: jnp.sum(_validation_error(a, problem, X_val, y_val)))(alphas)
    np.testing.assert_allclose(batched, loop, rtol=1e-7, atol=1e-12)

    def fit(a):
        return _solve(
            "lasso", {"alpha": a, **problem["hyper"]}, problem["X"], problem["y"], problem["sample_weight"]
        )

    # lanes are independent: the Jacobian of the coefficients is block diagonal
    jac = jax.jacobian(lambda a: fit(a).coef)(alphas)
    assert jac.shape == (16, P, 16)
    diagonal = jnp.einsum("apa->ap", jac)
    np.testing.assert_array_equal(jac, jnp.eye(16)[:, None, :] * diagonal[:, :, None])
    # and the outputs that describe the run are not differentiated
    gap_grad = jax.grad(lambda a: jnp.sum(fit(a).gap))(alphas)
    assert float(jnp.max(jnp.abs(gap_grad))) == 0.0


def test_float32(validation):
    problem, X_val, y_val, alphas, loop = validation
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), problem)
    grad = jax.grad(_validation_error)(jnp.float32(alphas[5]), p32, X_val.astype(jnp.float32),
                                       y_val.astype(jnp.float32), tol=1e-6)  # fmt: skip
    assert grad.dtype == jnp.float32
    np.testing.assert_allclose(grad, loop[5], rtol=2e-3)


# -- degrees of freedom and information criteria ------------------------------------------------


def test_degrees_of_freedom_of_the_lasso_is_the_support_size():
    problem = _problem("lasso")
    alphas = jnp.geomspace(0.6, 0.01, 16)
    pen = jr.L1(alpha=alphas, weights=problem["hyper"]["weights"])
    res = jr.solve(problem["X"], problem["y"], jr.SquaredLoss(), pen, sample_weight=problem["sample_weight"],
                   tol=TOL, max_iter=MAX_ITER)  # fmt: skip
    df = jr.degrees_of_freedom(problem["X"], problem["y"], jr.SquaredLoss(), pen, res,
                               sample_weight=problem["sample_weight"])  # fmt: skip
    size = jnp.sum(res.coef != 0, axis=-1)
    assert len(set(size.tolist())) > 4
    np.testing.assert_allclose(df, size, atol=1e-8)
    # lanes mapped in chunks of 5, 5, 5, 1 (bounded memory) give the same
    s = problem["sample_weight"] / jnp.sum(problem["sample_weight"])
    data = (problem["X"], problem["y"], s, jr.SquaredLoss(), pen.broadcast((16,), P, s.dtype))
    lane = functools.partial(implicit._lane_df, True)
    chunked = implicit._map_lanes(
        lane, data, res.coef[..., None], res.intercept[:, None], entries=5 * (P + 1) * (P + 1 + N)
    )
    np.testing.assert_allclose(chunked, df, rtol=1e-12)
    # without an intercept (centered data: the same solutions, intercept 0)
    X, y = problem["X"] - problem["X"].mean(0), problem["y"] - problem["y"].mean()
    res = jr.solve(X, y, jr.SquaredLoss(), pen, tol=TOL, max_iter=MAX_ITER)
    df = jr.degrees_of_freedom(X, y, jr.SquaredLoss(), pen, res._replace(intercept=0.0 * res.intercept),
                               fit_intercept=False)  # fmt: skip
    np.testing.assert_allclose(df, jnp.sum(res.coef != 0, axis=-1), atol=1e-8)


def test_degrees_of_freedom_of_the_elastic_net_closed_form():
    problem = _problem("enet")
    hyper = _hyper(problem)
    res = _solve("enet", hyper, problem["X"], problem["y"], problem["sample_weight"])
    df = jr.degrees_of_freedom(problem["X"], problem["y"], jr.SquaredLoss(), CASES["enet"][2](hyper), res,
                               sample_weight=problem["sample_weight"])  # fmt: skip
    s = np.asarray(problem["sample_weight"]) / np.sum(problem["sample_weight"])
    X = np.asarray(problem["X"])
    S = np.flatnonzero(np.asarray(res.coef))
    Xc = (X - s @ X)[:, S]
    ridge = float(hyper["alpha"] * (1 - hyper["l1_ratio"])) * np.asarray(hyper["weights"])[S]
    hat = Xc @ np.linalg.solve(Xc.T @ (s[:, None] * Xc) + np.diag(ridge), Xc.T * s)
    assert 0 < len(S) < P and float(df) < len(S)
    np.testing.assert_allclose(df, np.trace(hat), rtol=1e-9)


@pytest.mark.parametrize(
    ("name", "mean"), [("enet", lambda z: z), ("logistic_l1", jax.nn.sigmoid), ("poisson_l2", jnp.exp)]
)
def test_degrees_of_freedom_is_the_trace_of_the_implicit_jacobian(name, mean):
    problem = _problem(name)
    loss, _, make, _ = CASES[name]

    def fitted_mean(y):
        res = _solve(name, _hyper(problem), problem["X"], y, problem["sample_weight"])
        return mean(problem["X"] @ res.coef + res.intercept)

    jac = jax.jacrev(fitted_mean)(problem["y"])
    res = _solve(name, _hyper(problem), problem["X"], problem["y"], problem["sample_weight"])
    df = jr.degrees_of_freedom(problem["X"], problem["y"], loss, make(_hyper(problem)), res,
                               sample_weight=problem["sample_weight"])  # fmt: skip
    np.testing.assert_allclose(df, jnp.trace(jac) - 1.0, rtol=1e-8)


@pytest.fixture(scope="module")
def lars_ic():
    X, y, _ = _data("real", seed=3)
    models = {c: LassoLarsIC(criterion=c).fit(X, y) for c in ("aic", "bic")}
    # the path LassoLarsIC scores: LARS-lasso on the centered data
    alphas, _, coef_path = lars_path(X - X.mean(0), y - y.mean(), method="lasso", alpha_min=0.0)
    np.testing.assert_allclose(alphas, models["aic"].alphas_)
    return X, y, models, coef_path.T


@pytest.mark.parametrize("criterion", ["aic", "bic"])
def test_information_criterion_reproduces_lassolarsic(lars_ic, criterion):
    X, y, models, coef = lars_ic
    model = models[criterion]
    intercept = y.mean() - coef @ X.mean(0)
    ic = jr.information_criterion(X, y, coef, intercept, criterion)
    np.testing.assert_allclose(ic, model.criterion_, rtol=1e-10)
    ic = jr.information_criterion(X, y, coef, intercept, criterion, noise_variance=model.noise_variance_)
    np.testing.assert_allclose(ic, model.criterion_, rtol=1e-10)


def test_information_criterion_along_a_jaxreg_path(lars_ic):
    """Just above each LARS breakpoint the lasso has the breakpoint's support (no drops on this path)."""
    X, y, models, lars_coef = lars_ic
    sizes = np.sum(np.abs(lars_coef) > 0, axis=1)
    assert np.all(np.diff(sizes) == 1)
    assert models["aic"].alphas_[-1] == 0.0
    alphas = models["aic"].alphas_[:-1] * (1 + 1e-7)
    fits = [jr.solve(X, y, jr.SquaredLoss(), jr.L1(alpha=a, weights=jnp.ones(P)), tol=TOL, max_iter=MAX_ITER)
            for a in alphas]  # fmt: skip
    # the path ends at alpha = 0, the least-squares fit
    ols = np.linalg.lstsq(X - X.mean(0), y - y.mean(), rcond=None)[0]
    coef = jnp.stack([r.coef for r in fits] + [jnp.asarray(ols)])
    intercept = jnp.stack([r.intercept for r in fits] + [jnp.asarray(y.mean() - X.mean(0) @ ols)])
    alphas = np.r_[alphas, 0.0]
    df = jr.degrees_of_freedom(X, y, jr.SquaredLoss(), jr.L1(alpha=jnp.asarray(alphas)), jr.Result(
        coef, intercept, None, None, None, None))  # fmt: skip
    np.testing.assert_allclose(df, sizes, atol=1e-8)
    for criterion, model in models.items():
        ic = jr.information_criterion(X, y, coef, intercept, criterion)
        np.testing.assert_allclose(ic, model.criterion_, rtol=1e-6)
        np.testing.assert_allclose(jr.information_criterion(X, y, coef, intercept, criterion, df=df), ic)
        assert alphas[int(jnp.argmin(ic))] == pytest.approx(model.alpha_, rel=1e-6)


def test_information_criterion_rejects_bad_input():
    X, y, _ = _data("real")
    coef, intercept = np.zeros((2, P)), np.zeros(2)
    with pytest.raises(ValueError, match="criterion"):
        jr.information_criterion(X, y, coef, intercept, "cp")
    with pytest.raises(ValueError, match="noise variance"):
        jr.information_criterion(X[:12], y[:12], coef, intercept)
    with pytest.raises(ValueError, match="coef"):
        jr.information_criterion(X, y, coef[:, :3], intercept)
    assert jr.information_criterion(X[:12], y[:12], coef, intercept, noise_variance=1.0).shape == (2,)


# -- gradient-based tuning ------------------------------------------------------------------------


def _split(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P))
    X[:, 1] += 0.5 * X[:, 0]
    beta = np.zeros(P)
    beta[:4] = [1.5, -1.0, 0.8, 0.5]
    return jnp.asarray(X), jnp.asarray(X @ beta + rng.standard_normal(n))


def test_gradient_based_tuning_matches_the_grid_and_adaptive_lasso_beats_it():
    (Xt, yt), (Xv, yv), (Xs, ys) = _split(N, 10), _split(N, 11), _split(2000, 12)

    def fit(alpha, weights):
        return jr.solve(
            Xt, yt, jr.SquaredLoss(), jr.L1(alpha=alpha, weights=weights), tol=1e-10, max_iter=MAX_ITER
        )

    def error(res, X, y):
        return jnp.mean(
            (y - jnp.einsum("np,...p->...n", X, res.coef) - res.intercept[..., None]) ** 2, axis=-1
        )

    def descend(loss_fn, x, opt, n_steps):
        state = opt.init(x)
        step = jax.value_and_grad(loss_fn)
        for _ in range(n_steps):
            _, g = step(x)
            updates, state = opt.update(g, state)
            x = optax.apply_updates(x, updates)
        return x

    alphas = jnp.geomspace(0.6, 0.01, 16)
    grid = fit(alphas, jnp.ones(P))
    best = int(jnp.argmin(error(grid, Xv, yv)))
    grid_val, grid_test = float(error(grid, Xv, yv)[best]), float(error(grid, Xs, ys)[best])

    # log(alpha) by gradient descent on the validation error
    log_alpha = descend(
        lambda la: error(fit(jnp.exp(la), jnp.ones(P)), Xv, yv), jnp.log(0.5), optax.sgd(1.0), 40
    )
    tuned = fit(jnp.exp(log_alpha), jnp.ones(P))
    assert float(error(tuned, Xv, yv)) <= 1.01 * grid_val
    assert float(error(tuned, Xs, ys)) <= 1.05 * grid_test

    # a learned adaptive lasso: one log penalty factor per feature, at the grid's alpha
    log_w = descend(
        lambda lw: error(fit(alphas[best], jnp.exp(lw)), Xv, yv), jnp.zeros(P), optax.adam(0.05), 60
    )
    adaptive = fit(alphas[best], jnp.exp(log_w))
    assert float(error(adaptive, Xv, yv)) < grid_val
    assert float(error(adaptive, Xs, ys)) < grid_test
