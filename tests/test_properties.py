"""Properties of :func:`jaxreg.solve` on random problems (hypothesis, float64).

* ``Result.gap`` equals the duality gap written out independently in NumPy below, at the solution and
  at an arbitrary point, and ``converged`` says whether it is at most ``tol`` times the scale.
* Integer sample weights give the problem of the repeated rows.

The problems are drawn from a few shapes (each new shape or static option compiles the solver once),
squared and logistic loss with and without intercept, columns whose scales span up to six decades,
correlated columns, targets on scales 1e-3 to 1e3, uniform or random sample weights (some zero),
penalty factors (some zero), ``alpha`` from 1% to twice the largest useful one and ``l1_ratio`` in
[0, 1].  Twenty examples per property, the same ones every run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import expit, xlogy

import jaxreg as jr

EPS = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).tiny
SHAPES = [(9, 4), (9, 25), (40, 12)]  # squared loss works on the Gram matrix for n >= p, on X for p > n
MODELS = [("squared", True), ("squared", False), ("logistic", True), ("logistic", False)]
LOSS = {"squared": jr.SquaredLoss(), "logistic": jr.LogisticLoss()}
SETTINGS = settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def f(name, y, z):
    return 0.5 * (y - z) ** 2 if name == "squared" else np.logaddexp(0.0, z) - y * z


def f_prime(name, y, z):
    return z - y if name == "squared" else expit(z) - y


def f_conj(name, y, t):
    """Convex conjugate of ``z -> f(y, z)`` at ``t``."""
    if name == "squared":
        return t * y + 0.5 * t**2
    p = t + y
    pc = np.clip(p, 0.0, 1.0)
    return np.where((p >= 0) & (p <= 1), xlogy(pc, pc) + xlogy(1 - pc, 1 - pc), np.inf)


def gap_scale(name, y, s, fit_intercept):
    """The unit of ``tol``: ``2 mean_s f(y, b0)`` at the intercept-only model ``b0`` (0 without intercept)."""
    b0 = 0.0
    if fit_intercept:
        m = np.sum(s * y)
        b0 = m if name == "squared" else np.log(m / (1 - m))
    return max(2 * np.sum(s * f(name, y, b0)), EPS * np.sum(s * y**2) + TINY)


def objective(name, X, y, s, coef, intercept, alpha, l1_ratio, omega):
    """The objective and the size of its rounding error (``f`` is evaluated at ``z`` rounded by ``eps |z|``).

    ``s`` sums to one.
    """
    z = X @ coef + intercept
    l1, l2 = alpha * l1_ratio * omega, alpha * (1 - l1_ratio) * omega
    pen = np.sum(l1 * np.abs(coef)) + 0.5 * np.sum(l2 * coef**2)
    loss = s * f(name, y, z)
    slope = s * np.abs(f_prime(name, y, z))
    size = np.sum(np.abs(loss)) + np.sum(slope * (np.abs(y) + np.abs(X) @ np.abs(coef) + abs(intercept)))
    return np.sum(loss) + pen, size + pen


def numpy_gap(name, X, y, s, coef, intercept, fit_intercept, alpha, l1_ratio, omega):
    """Fenchel duality gap of ``sum_i s_i f(y_i, x_i w + b) + sum_j (l1_j |w_j| + l2_j w_j**2 / 2)``.

    ``s`` sums to one; ``l1 = alpha l1_ratio omega``, ``l2 = alpha (1 - l1_ratio) omega``.  The dual
    point is ``c u`` with ``u = -f'(y, z)`` and ``c = min(1, min_j l1_j / |v_j|)`` over the features
    with ``l2_j = 0 < l1_j`` (``v = X.T (s u)``; with an intercept, that of the columns centered with
    the weights, the same problem in coordinates whose intercept is ``b_c = b + mean_s(X) w``), so that

        D = -sum_i s_i f*(y_i, -c u_i) - sum_{l2_j > 0} (c |v_j| - l1_j)_+**2 / (2 l2_j).

    For squared loss the intercept is ``sum_i s_i (y_i - x_i w)`` (so ``sum_i s_i u_i = 0``).  jaxreg
    adds, as documented in ``jaxreg.solvers``, ``c R_j |v_j|`` for each unpenalized feature and
    ``c R_b |sum_i s_i u_i|`` for a free intercept (the support function of a box ``|w_j| <= R_j``
    whose size is fixed by the data): ``R_j = max(2 |w_j|, sqrt(scale) / ||x_j||_s)`` with the
    weighted (centered, for squared loss with intercept) column norm floored at ``sqrt(eps)`` of the
    largest, ``R_b = max(2 |b_c|, sqrt(scale))``.  The gap is absolute (not divided by ``scale``).

    Returns the gap and the size of the terms it is a difference of (for rounding tolerances).
    """
    closed = fit_intercept and name == "squared"
    scale = gap_scale(name, y, s, fit_intercept)
    if closed:
        intercept = np.sum(s * (y - X @ coef))
    elif not fit_intercept:
        intercept = 0.0
    z = X @ coef + intercept
    u = -f_prime(name, y, z)
    # with an intercept, the gap of the same problem on columns centered with the weights s, whose
    # intercept is intercept + mean_s(X) @ coef
    mean_x = X.T @ s if fit_intercept else np.zeros(X.shape[1])
    v = (X - mean_x).T @ (s * u)
    l1, l2 = alpha * l1_ratio * omega, alpha * (1 - l1_ratio) * omega
    a = np.abs(v)
    l1_only = (l2 == 0) & (l1 > 0)
    c = 1.0 / max(np.max(a[l1_only] / l1[l1_only], initial=0.0), 1.0)
    pen = l2 > 0
    conj_g = np.sum(np.maximum(c * a[pen] - l1[pen], 0.0) ** 2 / (2 * l2[pen]))
    loss_terms = s * f(name, y, z)
    primal = np.sum(loss_terms) + np.sum(l1 * np.abs(coef)) + 0.5 * np.sum(l2 * coef**2)
    pos = s > 0
    conj_terms = s[pos] * f_conj(name, y[pos], -c * u[pos])
    dual = -np.sum(conj_terms) - conj_g
    second = (X**2).T @ s - ((X.T @ s) ** 2 if closed else 0.0)
    col_norm = np.sqrt(np.maximum(second, 0.0))
    R = np.maximum(2 * np.abs(coef), np.sqrt(scale) / np.maximum(col_norm, np.sqrt(EPS) * col_norm.max()))
    free = (l1 == 0) & (l2 == 0)
    box = np.sum(R[free] * a[free])
    if fit_intercept and not closed:
        box += max(2 * abs(intercept + mean_x @ coef), np.sqrt(scale)) * abs(np.sum(s * u))
    gap = primal - dual + c * box
    xc = X - (X.T @ s if closed else 0.0)
    size = (
        np.sum(np.abs(loss_terms)) + np.sum(np.abs(conj_terms)) + np.sum(s * np.abs(u * y)) + conj_g
        + np.sum(s * (xc @ coef) ** 2) + np.sum(s * np.abs(xc @ coef) * np.abs(y)) + c * box + abs(primal)
    )  # fmt: skip
    return gap, size


class Problem(NamedTuple):
    name: str  # loss
    fit_intercept: bool
    X: np.ndarray
    y: np.ndarray
    s: np.ndarray  # sample weights
    omega: np.ndarray  # penalty factors
    factors: str  # "none": omega is all ones and not passed
    alpha: float
    l1_ratio: float

    def fit(self, X, y, sample_weight, **kw):
        weights = None if self.factors == "none" else self.omega
        pen = jr.ElasticNet(alpha=self.alpha, l1_ratio=self.l1_ratio, weights=weights)
        kw.setdefault("coef_init", np.zeros(X.shape[1]))  # always given: one compiled program either way
        kw.setdefault("intercept_init", 0.0)
        loss = LOSS[self.name]
        return jr.solve(X, y, loss, pen, fit_intercept=self.fit_intercept, sample_weight=sample_weight, **kw)


@st.composite
def problems(draw, zero_factors=True, spreads=(0.0, 2.0, 6.0), log_alpha=(-2.0, 0.3)):
    """A random :class:`Problem`."""
    n, p = draw(st.sampled_from(SHAPES))
    name, fit_intercept = draw(st.sampled_from(MODELS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spread = draw(st.sampled_from(spreads))  # decades between column scales
    corr = draw(st.floats(0.0, 0.99))
    X = np.sqrt(1 - corr) * rng.standard_normal((n, p)) + np.sqrt(corr) * rng.standard_normal((n, 1))
    shift = draw(st.sampled_from([0.0, 3.0])) * rng.normal(size=p)
    X = X * 10.0 ** rng.uniform(-spread / 2, spread / 2, p) + shift
    w = rng.standard_normal(p) * (rng.random(p) < 0.5) / np.std(X, axis=0)
    z = X @ w + 0.5 * rng.standard_normal(n)
    if name == "squared":
        y = 10.0 ** draw(st.floats(-3, 3)) * (z + draw(st.sampled_from([0.0, 30.0])))
    else:
        y = (z > np.median(z)).astype(float)
        flip = rng.random(n) < 0.1
        y[flip] = 1 - y[flip]
        y[:2] = [0.0, 1.0]
    weighting = draw(st.sampled_from(["none", "uniform", "with zeros"]))
    s = np.ones(n) if weighting == "none" else rng.uniform(0.1, 3.0, n)
    if weighting == "with zeros":
        s[2:][rng.random(n - 2) < 0.3] = 0.0  # rows 0 and 1 keep both classes
    factors = draw(st.sampled_from(["none", "random"] + (["with zeros"] if zero_factors else [])))
    omega = np.ones(p) if factors == "none" else rng.uniform(0.1, 3.0, p)
    if factors == "with zeros":
        omega[rng.permutation(p)[: max(1, min(p, n) // 3)]] = 0.0
    l1_ratio = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.05, 0.95))
    sn = s / s.sum()
    b0 = 0.0
    if fit_intercept:
        m = np.sum(sn * y)
        b0 = m if name == "squared" else np.log(m / (1 - m))
    v0 = np.abs(X.T @ (sn * f_prime(name, y, b0)))
    scale = np.max(v0[omega > 0] / omega[omega > 0])
    alpha = 10.0 ** draw(st.floats(*log_alpha)) * max(scale, 1e-12)
    return Problem(name, fit_intercept, X, y, s, omega, factors, alpha, l1_ratio)


@SETTINGS
@given(pb=problems(), start=st.sampled_from(["solution", "random point"]), log_tol=st.floats(-10, -3))
def test_reported_gap_equals_numpy_gap(pb, start, log_tol):
    """``Result.gap`` is the documented duality gap at the returned point; ``converged`` tells the truth.

    From a random point with ``tol = 1e12`` the solver stops where it starts (``n_iter == 0``): the
    comparison then covers large gaps, non-optimal intercepts and active box terms too.
    """
    X, y = pb.X, pb.y
    s = pb.s / pb.s.sum()
    if start == "solution":
        tol = 10.0**log_tol
        res = pb.fit(X, y, pb.s, tol=tol)
    else:
        tol = 1e12
        rng = np.random.default_rng(X.shape[1])
        coef = rng.standard_normal(X.shape[1]) / np.std(X, axis=0) * np.std(y)
        res = pb.fit(X, y, pb.s, tol=tol, coef_init=coef, intercept_init=np.mean(y) + 0.3)
        assert int(res.n_iter) == 0
        np.testing.assert_array_equal(res.coef, coef)
    coef, b = np.asarray(res.coef), float(res.intercept)
    assert int(res.status) != jr.Status.NONFINITE
    ref, size = numpy_gap(pb.name, X, y, s, coef, b, pb.fit_intercept, pb.alpha, pb.l1_ratio, pb.omega)
    assert abs(float(res.gap) - ref) <= 1e-10 * size + TINY, (float(res.gap), ref, size)
    assert ref >= -1e-10 * size  # weak duality
    limit = tol * gap_scale(pb.name, y, s, pb.fit_intercept)
    if abs(ref - limit) > 1e-10 * size:
        assert bool(res.converged) == (ref <= limit)
    if pb.name == "squared" and pb.fit_intercept:  # the intercept is the weighted mean residual
        size_b = np.sum(s * np.abs(y)) + np.sum(s * np.abs(X @ coef))
        assert abs(b - np.sum(s * (y - X @ coef))) <= 1e-12 * size_b + TINY


@SETTINGS
@given(pb=problems(zero_factors=False), draws=st.data())
def test_integer_sample_weights_equal_repeated_rows(pb, draws):
    """Fits with integer weights ``k_i`` and on the data with row ``i`` repeated ``k_i`` times agree.

    Both minimize the same function ``P``, so ``|P(w1) - P(w2)| <= gap1 + gap2``; where ``P`` is
    ``mu``-strongly convex in ``w`` (``l1_ratio < 1``, positive factors), ``|w1 - w2|`` is at most
    ``sqrt(2 gap1 / mu) + sqrt(2 gap2 / mu)`` (each gap plus its rounding).  The counts sum to ``n``: no
    new compilation.  Column scales span up to six decades and ``alpha`` goes down to 1% of the
    largest useful one, as in the other properties: every fit must converge within ``max_iter``.
    """
    X, y = pb.X, pb.y.copy()
    n = len(y)
    rows = draws.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n), label="repeated rows")
    counts = np.bincount(rows, minlength=n)
    if pb.name == "logistic":  # both classes among the kept rows
        kept = np.flatnonzero(counts)
        if kept.size == 1:
            return  # a single distinct row cannot hold two classes
        y[kept[0]], y[kept[-1]] = 0.0, 1.0
    order = np.random.default_rng(n).permutation(n)  # row order does not matter either
    Xr, yr = np.repeat(X, counts, axis=0)[order], np.repeat(y, counts)[order]
    tol, max_iter = 1e-10, 100_000
    weighted = pb.fit(X, y, counts, tol=tol, max_iter=max_iter)
    repeated = pb.fit(Xr, yr, None, tol=tol, max_iter=max_iter)
    scaled = pb.fit(X, y, 1e3 * counts, tol=tol, max_iter=max_iter)
    s = counts / n
    scale = gap_scale(pb.name, y, s, pb.fit_intercept)
    objs, gaps = [], []
    for res in (weighted, repeated, scaled):
        assert bool(res.converged), (res.gap, res.n_iter)
        g = float(res.gap)
        assert g <= tol * scale * (1 + 1e-9)
        coef, b = np.asarray(res.coef), float(res.intercept)
        obj, size = objective(pb.name, X, y, s, coef, b, pb.alpha, pb.l1_ratio, pb.omega)
        objs.append(obj)
        gaps.append(max(g, 0.0) + 1e-12 * size)  # the gap is computed to this rounding
    assert abs(objs[0] - objs[1]) <= gaps[0] + gaps[1]
    assert abs(objs[0] - objs[2]) <= gaps[0] + gaps[2]
    mu = pb.alpha * (1 - pb.l1_ratio) * np.min(pb.omega)
    if mu > 0:
        slack = 1e-9 * (1 + np.abs(weighted.coef).max())
        bound = np.sqrt(2 * gaps[0] / mu) + np.sqrt(2 * gaps[1] / mu) + slack
        assert np.linalg.norm(np.asarray(weighted.coef) - np.asarray(repeated.coef)) <= bound
