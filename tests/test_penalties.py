"""Contract tests run over every penalty: prox, dual (conjugate), critical alpha, pytree behaviour."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from registry import GROUPS, PENALTIES, WEIGHTS, P, group_strengths, is_positive, penalty_strengths
from scipy import optimize

import jaxreg as jr

SEPARABLE = [c for c in PENALTIES if not c.name.startswith("GroupLasso")]
GROUPED = [c for c in PENALTIES if c.name.startswith("GroupLasso")]

_value = jax.jit(lambda penalty, w: penalty.value(w))
# g(t * e_j) for every t of a grid and every coordinate j: (n_grid, n_features)
_coordinate_values = jax.jit(
    jax.vmap(jax.vmap(lambda penalty, t, e: penalty.value(t * e), (None, None, 0)), (None, 0, None))
)


def value(penalty: jr.Penalty, w) -> float:
    return float(_value(penalty, jnp.asarray(w, jnp.float64)))


def prox_objective(penalty: jr.Penalty, z, v, step: float) -> float:
    z, v = np.asarray(z, float), np.asarray(v, float)
    return 0.5 * float(np.sum((z - v) ** 2)) + step * value(penalty, z)


def random_v(seed: int, shape=(P,), scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def assert_prox_minimizer(penalty: jr.Penalty, z: np.ndarray, v: np.ndarray, step: float, candidates) -> None:
    """``h(x) >= h(z) + |x - z|**2 / 2`` for all feasible ``x``: ``h`` is 1-strongly convex, minimal at z."""
    hz = prox_objective(penalty, z, v, step)
    for x in candidates:
        x = np.asarray(x, float)
        if is_positive(penalty):
            assert np.all(x >= 0)
        hx = prox_objective(penalty, x, v, step)
        assert hx >= hz + 0.5 * np.sum((x - z) ** 2) - 1e-10 * (1 + abs(hz))


@pytest.mark.parametrize("case", SEPARABLE, ids=str)
@pytest.mark.parametrize("step", [0.4, 1.7])
def test_prox_separable_matches_coordinatewise_brute_force(case, step):
    penalty = case.make(0.7)
    for seed in range(3):
        v = random_v(seed, scale=1.5)
        z = np.asarray(penalty.prox(jnp.asarray(v), step))
        assert z.shape == v.shape
        lo = 0.0 if is_positive(penalty) else -3.0 - np.abs(v).max()
        hi = 3.0 + np.abs(v).max()
        grid = np.union1d(np.linspace(lo, hi, 200_001), [0.0])
        dt = (hi - lo) / 200_000
        G = np.asarray(_coordinate_values(penalty, jnp.asarray(grid), jnp.eye(P)))
        for j in range(P):
            e = np.eye(P)[j]

            def h(t: float, j: int = j, e: np.ndarray = e, v: np.ndarray = v) -> float:
                return 0.5 * (t - v[j]) ** 2 + step * value(penalty, t * e)

            vals = 0.5 * (grid - v[j]) ** 2 + step * G[:, j]
            k = int(np.argmin(vals))
            assert h(z[j]) <= vals[k] + 1e-12
            assert abs(z[j] - grid[k]) <= 1.01 * dt
            assert abs(h(grid[k]) - vals[k]) <= 1e-12 * (1 + abs(vals[k]))
            ref = optimize.minimize_scalar(h, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
            assert h(z[j]) <= ref.fun + 1e-12
            assert abs(z[j] - ref.x) <= 1e-6


@pytest.mark.parametrize("case", GROUPED, ids=str)
@pytest.mark.parametrize("step", [0.4, 1.7])
def test_prox_group_matches_scipy_from_several_starts(case, step):
    penalty = case.make(0.7)
    seed = int(10 * step)
    v = random_v(seed, scale=1.5)
    z = np.asarray(penalty.prox(jnp.asarray(v), step))

    def h(x: np.ndarray) -> float:
        return prox_objective(penalty, x, v, step)

    found = [
        optimize.minimize(h, x0, method="Powell", options={"xtol": 1e-9, "ftol": 1e-14}).x
        for x0 in (np.zeros(P), v, random_v(seed + 10))
    ]
    best = min(found, key=h)
    assert h(z) <= h(best) + 1e-12
    # 1-strong convexity: |x - z|**2 <= 2 (h(x) - h(z)) for the minimizer z and any x
    assert_prox_minimizer(penalty, z, v, step, found)
    np.testing.assert_allclose(z, best, atol=1e-4)


@pytest.mark.parametrize("case", PENALTIES, ids=str)
@pytest.mark.parametrize("shape", [(P,), (P, 3)], ids=["1d", "2d"])
def test_prox_is_minimizer_against_perturbations(case, shape):
    """Strong convexity certificate against random feasible points near and far from the prox."""
    penalty = case.make(0.5)
    rng = np.random.default_rng(3)
    for step in (0.3, 2.0):
        v = rng.standard_normal(shape)
        z = np.asarray(penalty.prox(jnp.asarray(v), step))
        assert z.shape == shape
        cands = []
        for scale in (1e-4, 1e-2, 1.0):
            for _ in range(20):
                x = z + scale * rng.standard_normal(shape)
                cands.append(np.maximum(x, 0.0) if is_positive(penalty) else x)
        cands.append(np.zeros(shape))
        cands.append(np.maximum(v, 0.0) if is_positive(penalty) else v)
        assert_prox_minimizer(penalty, z, v, step, cands)


@pytest.mark.parametrize("case", SEPARABLE, ids=str)
def test_prox_exact_zeros_separable(case):
    penalty = case.make(0.8)
    step = 0.5
    l1, l2 = penalty_strengths(penalty, P)
    thresh = step * l1
    v = np.array([0.3, -0.1, 0.39, 0.41, -0.2, 0.05])
    v = np.concatenate([v, -v]).reshape(2, P)
    for row in v:
        z = np.asarray(penalty.prox(jnp.asarray(row), step))
        if is_positive(penalty):
            assert np.all(z >= 0)
            expect_zero = row <= thresh
        else:
            expect_zero = np.abs(row) <= thresh
        assert np.all(z[expect_zero] == 0.0)
        assert np.all(z[~expect_zero] != 0.0)
        free = (l1 == 0) & (l2 == 0)
        expected_free = np.maximum(row, 0.0) if is_positive(penalty) else row
        np.testing.assert_array_equal(z[free], expected_free[free])
        # the closed form of the documented penalty
        a = np.maximum(row, 0.0) if is_positive(penalty) else row
        ref = np.sign(a) * np.maximum(np.abs(a) - thresh, 0.0) / (1.0 + step * l2)
        np.testing.assert_allclose(z, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("case", GROUPED, ids=str)
def test_prox_exact_zero_groups(case):
    penalty = case.make(1.0)
    step = 0.5
    lam = step * group_strengths(penalty)
    ids = np.asarray(GROUPS)
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.standard_normal(P)
        z = np.asarray(penalty.prox(jnp.asarray(v), step))
        for g in range(lam.size):
            vg, zg = v[ids == g], z[ids == g]
            if lam[g] == 0:
                np.testing.assert_array_equal(zg, vg)
            elif np.linalg.norm(vg) <= lam[g]:
                assert np.all(zg == 0.0)
            else:
                np.testing.assert_allclose(zg, vg * (1 - lam[g] / np.linalg.norm(vg)), rtol=1e-13)
    # a zero input stays exactly zero (no division by a zero norm)
    v = np.zeros(P)
    np.testing.assert_array_equal(np.asarray(penalty.prox(jnp.asarray(v), step)), 0.0)


def test_l2_prox_never_exact_zero():
    z = np.asarray(jr.L2(10.0).prox(jnp.array([1e-3, -2.0, 5.0]), 1.0))
    assert np.all(z != 0)
    np.testing.assert_allclose(z, np.array([1e-3, -2.0, 5.0]) / 11.0, rtol=1e-15)


# -- dual and critical alpha ---------------------------------------------------------------------------------


def _conjugate_1d(g, cv: float, positive: bool, radius: float) -> float:
    """``sup_t (cv * t - g(t))`` over ``|t| <= radius`` (``t >= 0`` when positive) by bounded Brent."""
    lo = 0.0 if positive else -radius
    res = optimize.minimize_scalar(
        lambda t: g(t) - cv * t, bounds=(lo, radius), method="bounded", options={"xatol": 1e-12}
    )
    return max(-res.fun, -g(0.0))


@pytest.mark.parametrize("case", PENALTIES, ids=str)
@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_dual_scaling_and_fenchel_young(case, scale):
    penalty = case.make(0.6)
    rng = np.random.default_rng(int(scale * 100))
    v = scale * rng.standard_normal(P)
    c, conj = (float(a) for a in penalty.dual(jnp.asarray(v)))
    assert 0.0 < c <= 1.0
    assert np.isfinite(conj) and conj >= -1e-12
    pen_mask = ~np.asarray(penalty.unpenalized(jnp.zeros(P)))
    assert pen_mask.tolist() == [j not in case.free for j in range(P)]
    # Fenchel-Young on the penalized coordinates: g(w) + g*(c v) >= c <w, v>
    for w_scale in (1e-3, 1.0, 1e3):
        for _ in range(30):
            w = w_scale * rng.standard_normal(P)
            if is_positive(penalty):
                w = np.abs(w)
            w[~pen_mask] = 0.0
            lhs = value(penalty, w) + conj
            rhs = c * float(w @ v)
            assert lhs >= rhs - 1e-10 * (abs(lhs) + abs(rhs) + 1)

    if isinstance(penalty, jr.GroupLasso):
        lam = group_strengths(penalty)
        norms = np.array([np.linalg.norm(v[np.asarray(GROUPS) == g]) for g in range(lam.size)])
        on = lam > 0
        assert np.all(c * norms[on] <= lam[on] * (1 + 1e-12))
        assert conj == 0.0
        if c < 1:
            np.testing.assert_allclose(np.max(c * norms[on] / lam[on]), 1.0, rtol=1e-12)
        return

    # the conjugate is exact: brute-force sup over each penalized coordinate
    l1, l2 = penalty_strengths(penalty, P)
    ref = 0.0
    for j in np.flatnonzero(pen_mask):
        e = np.eye(P)[j]
        radius = 10 * (1 + abs(c * v[j])) / l2[j] if l2[j] > 0 else 1e3
        ref += _conjugate_1d(lambda t, e=e: value(penalty, t * e), c * v[j], is_positive(penalty), radius)
    np.testing.assert_allclose(conj, ref, rtol=1e-6, atol=1e-9 * (1 + scale**2))
    # feasibility of the scaled point for the pure-l1 coordinates, and c is the largest such scale
    a = v if is_positive(penalty) else np.abs(v)
    l1_only = (l2 == 0) & (l1 > 0)
    if np.any(l1_only):
        assert np.all(c * a[l1_only] <= l1[l1_only] * (1 + 1e-12))
        if c < 1:
            np.testing.assert_allclose(np.max(c * a[l1_only] / l1[l1_only]), 1.0, rtol=1e-12)
    else:
        assert c == 1.0


@pytest.mark.parametrize("case", [c for c in PENALTIES if c.sparse], ids=str)
@pytest.mark.parametrize("shape", [(P,), (P, 3)], ids=["1d", "2d"])
def test_critical_alpha_is_where_prox_of_gradient_step_vanishes(case, shape):
    """At ``alpha >= critical_alpha(v)`` the point ``w = 0`` is a fixed point of the prox-gradient step."""
    v = np.random.default_rng(5).standard_normal(shape)
    amax = float(case.make(1.0).critical_alpha(jnp.asarray(v)))
    assert np.isfinite(amax) and amax > 0
    free = np.zeros(shape, bool)
    free[list(case.free)] = True
    for step in (0.5, 2.0):
        above = np.asarray(case.make(amax * (1 + 1e-10)).prox(jnp.asarray(step * v), step))
        assert np.all(above[~free] == 0.0)
        below = np.asarray(case.make(amax * (1 - 1e-6)).prox(jnp.asarray(step * v), step))
        assert np.any(below[~free] != 0.0)
    # the gradient on unpenalized features does not enter
    v2 = v.copy()
    v2[free] = 1e6
    assert float(case.make(1.0).critical_alpha(jnp.asarray(v2))) == amax
    # it does not depend on the alpha of the penalty it is called on
    assert float(case.make(123.0).critical_alpha(jnp.asarray(v))) == amax


@pytest.mark.parametrize("case", [c for c in PENALTIES if not c.sparse], ids=str)
def test_critical_alpha_of_ridge_is_infinite(case):
    assert float(case.make(1.0).critical_alpha(jnp.ones(P))) == np.inf
    assert float(jr.ElasticNet(1.0, 0.0).critical_alpha(jnp.ones(P))) == np.inf


def test_critical_alpha_positive_ignores_negative_gradients():
    v = jnp.array([-3.0, 0.5, -1.0])
    assert float(jr.L1(positive=True).critical_alpha(v)) == 0.5
    assert float(jr.L1().critical_alpha(v)) == 3.0
    assert float(jr.ElasticNet(l1_ratio=0.25).critical_alpha(v)) == 12.0


# -- values and pytree behaviour -----------------------------------------------------------------------------


def test_values_follow_documented_formulas():
    w = jnp.array([1.0, -2.0, 0.0, 3.0, -0.5, 0.25])
    wn = np.asarray(w)
    np.testing.assert_allclose(jr.L1(0.3, weights=WEIGHTS).value(w), 0.3 * np.sum(WEIGHTS * np.abs(wn)))
    np.testing.assert_allclose(jr.L2(0.3, weights=WEIGHTS).value(w), 0.15 * np.sum(WEIGHTS * wn**2))
    np.testing.assert_allclose(
        jr.ElasticNet(0.3, 0.2).value(w), 0.3 * (0.2 * np.abs(wn).sum() + 0.4 * np.sum(wn**2))
    )
    gl = jr.GroupLasso(0.3, groups=GROUPS, weights=[1.0, 2.0, 0.5])
    ref = 0.3 * (np.sqrt(2) * np.hypot(1, 2) + 2 * np.sqrt(3) * np.linalg.norm(wn[2:5]) + 0.5 * 0.25)
    np.testing.assert_allclose(gl.value(w), ref, rtol=1e-14)


def test_group_lasso_accepts_index_lists_and_contiguous():
    a = jr.GroupLasso(1.0, groups=[[0, 1], [2, 3, 4], [5]])
    assert a.groups == GROUPS
    assert jr.GroupLasso.contiguous(6, 2).groups == (0, 0, 1, 1, 2, 2)
    with pytest.raises(ValueError, match="groups"):
        jr.GroupLasso(1.0, groups=[[0, 1], [1, 2]])


def test_group_labels_map_to_weights_the_same_way_in_any_container():
    """``weights[k]`` belongs to the k-th smallest label, for a tuple, a list or an array of labels."""
    labels = (7, 7, 3, 3, 3, 9)
    w = jnp.array([1.0, 2.0, 0.0, -1.0, 0.5, 3.0])
    weights = [2.0, 1.0, 0.5]  # labels 3, 7, 9
    ref = 2.0 * np.sqrt(3) * np.linalg.norm([0.0, -1.0, 0.5]) + np.sqrt(2) * np.hypot(1, 2) + 0.5 * 3.0
    for groups in (labels, list(labels), np.array(labels)):
        gl = jr.GroupLasso(1.0, groups=groups, weights=weights)
        assert gl.n_groups == 3
        assert gl.groups == (1, 1, 0, 0, 0, 2)
        np.testing.assert_allclose(float(gl.value(w)), ref, rtol=1e-14)


@pytest.mark.parametrize("case", PENALTIES, ids=str)
def test_hyperparameters_are_leaves(case):
    penalty = case.make(0.5)
    leaves = jax.tree_util.tree_leaves(penalty)
    assert any(np.ndim(x) == 0 and float(x) == 0.5 for x in leaves)
    v = jnp.asarray(random_v(1, scale=2.0))
    alphas = jnp.array([0.1, 0.5, 2.0])
    batched = jax.vmap(lambda a: case.make(a).prox(v, 0.7))(alphas)
    looped = jnp.stack([case.make(a).prox(v, 0.7) for a in [0.1, 0.5, 2.0]])
    np.testing.assert_allclose(batched, looped, rtol=1e-14)
    g = jax.grad(lambda a: case.make(a).value(v))(0.5)
    np.testing.assert_allclose(g, float(case.make(1.0).value(v)), rtol=1e-12)
    # structure (static fields) survives flatten / unflatten
    flat, tree = jax.tree_util.tree_flatten(penalty)
    again = jax.tree_util.tree_unflatten(tree, flat)
    assert type(again) is type(penalty) and jax.tree_util.tree_structure(again) == tree
    assert is_positive(again) == is_positive(penalty)
    assert getattr(again, "groups", None) == getattr(penalty, "groups", None)


@pytest.mark.parametrize("case", PENALTIES, ids=str)
def test_dtype_preserved(case):
    penalty = case.make(0.5)
    v = jnp.asarray(random_v(2), jnp.float32)
    assert penalty.prox(v, 0.5).dtype == jnp.float32
    assert penalty.value(v).dtype == jnp.float32
    c, conj = penalty.dual(v)
    assert c.dtype == jnp.float32 and conj.dtype == jnp.float32
