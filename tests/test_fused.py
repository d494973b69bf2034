"""The fused FISTA steps (``jaxreg._fused``, opt-in with ``jaxreg.solvers.FUSED``), run in Pallas'
interpreter on the CPU: the kernels against NumPy, and solves against the XLA steps they replace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr
from jaxreg import _fused
from jaxreg import solvers as S


def numpy_gap(X, y, coef, intercept, alpha):
    """The lasso's duality gap in NumPy, at the rescaled centered residual."""
    n = len(y)
    r = y - X @ coef - intercept
    r = r - r.mean()
    theta = r * min(1.0, alpha / (np.abs(X.T @ r).max() / n))
    yc = y - y.mean()
    primal = 0.5 * np.mean((y - X @ coef - intercept) ** 2) + alpha * np.abs(coef).sum()
    return primal - ((theta @ yc) / n - 0.5 * (theta @ theta) / n)


def _reference(X, s, y, img, imgy, XWp, W, Wy, Wp, accepted, beta, b, c, l1, l2, L, positive):
    """The two kernels' arrays and sums in NumPy (float64), after the decision ``accepted, beta, b, L``
    on the last step's candidate ``Wp`` (image ``XWp + b``)."""
    Zn = XWp + b
    Zy = np.where(accepted, Zn + beta * (Zn - img), imgy)
    W1 = np.where(accepted, Wp, W)
    Wy1 = np.where(accepted, Wp + beta * (Wp - W), Wy)
    G = s * (Zy - y)
    step = 1.0 / L
    v = Wy1 - step * (X.T @ G - c * G.sum(0))
    a = np.maximum(v - step * l1, 0.0) if positive else np.sign(v) * np.maximum(np.abs(v) - step * l1, 0.0)
    wn = a / (1.0 + step * l2)
    xw = X @ wn - (c * wn).sum(0)
    e = xw - (Zy - b)
    return {
        "W": W1, "Wy": Wy1, "Wn": wn, "XW": xw, "img": np.where(accepted, Zn, img), "imgy": Zy,
        "dd": ((wn - Wy1) ** 2).sum(0), "rr": ((Wy1 - wn) * (wn - W1)).sum(0),
        "d": (s * (y - xw - b)).sum(0), "aa": (s * e * e).sum(0),
    }  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("positive", [False, True])
def test_kernels_match_numpy(dtype, positive):
    """``grad_prox`` decides on the last step's candidate as XLA does (``_fused.settle``: accepted,
    rejected, done, out of iterations and with no candidate pending, lanes alike), then gives with
    ``image`` that decision's picks of ``W``, ``Wy`` and the images (accepted lanes take the
    candidate, extrapolated), the step's candidate, image and per-lane sums of the XLA step, with the
    elastic net's two strengths per feature and lane, rows of zero weight, and the lanes in two
    blocks of programs."""
    assert _fused.TB == 32
    rng = np.random.default_rng(int(positive))
    n, k, B = 96, 256, 64
    X = rng.standard_normal((n, k)) + 2.0
    X[80:] = 0.0  # padded samples
    s = rng.random((n, B))
    s[80:] = 0.0
    s /= s.sum(0)
    y = rng.standard_normal((n, 1))
    img, imgy, XWp = (rng.standard_normal((n, B)) for _ in range(3))
    W, Wy, Wp = (rng.standard_normal((k, B)) for _ in range(3))
    c = np.repeat(s[:, :1].T @ X, B, axis=0).T
    l1, l2 = 0.05 * rng.random((k, B)), 0.05 * rng.random((k, B)) * (rng.random((1, B)) > 0.5)
    L = 5.0 + rng.random(B)
    rows = {
        "b": rng.standard_normal(B), "by": rng.standard_normal(B), "t": 1.0 + 2.0 * rng.random(B), "L": L,
        "n_iter": rng.integers(5, 12, B).astype(float), "overflow": (rng.random(B) < 0.2).astype(float),
        "done": (rng.random(B) < 0.15).astype(float), "max_iter": np.full(B, 10.0), "L0": 0.5 * L,
        "kappa": np.ones(B), "pending": (rng.random(B) < 0.9).astype(float), "accept": np.zeros(B),
        "beta": np.zeros(B),
    }  # fmt: skip
    nt = n // _fused.TN
    d = 0.1 * rng.standard_normal((nt, B))
    dd = np.repeat(rng.random((1, B)), nt, axis=0)
    # the excess (aa - d**2) / 2 on either side of L dd / 2
    aa = (d.sum(0) ** 2 + L * dd[0] * (0.2 + 1.6 * rng.random(B))) / nt + 0.0 * d
    rr = np.repeat(rng.standard_normal((1, B)), nt, axis=0)
    sums = [jnp.asarray(a, dtype) for a in (d, aa, dd, rr)]
    lanes = _fused.pack({name: jnp.asarray(v, dtype) for name, v in rows.items()})
    want = {name: np.asarray(v, np.float64) for name, v in _fused.settle(S._rule, lanes, sums).items()}
    accepted = want["accept"] > 0.5
    active = (rows["pending"] > 0) & (rows["done"] == 0) & (rows["n_iter"] < 10)
    assert 0 < accepted.sum() < active.sum() < B  # some of each
    ref = _reference(X, s, y, img, imgy, XWp, W, Wy, Wp, accepted, want["beta"], want["b"], c, l1, l2,
                     want["L"], positive)  # fmt: skip
    args = [jnp.asarray(a, dtype) for a in (X, s, y, img, imgy, XWp, W, Wy, Wp, c, l1, l2)]

    @jax.jit
    def run(X, s, y, img, imgy, XWp, W, Wy, Wp, c, l1, l2, lanes, sums):
        W1, Wy1, Wn, lanes, parts = _fused.grad_prox(X, img, imgy, XWp, s, y, W, Wy, Wp, c, l1, l2, lanes,
                                                     sums, positive, S._rule)  # fmt: skip
        xw, img1, imgy1, (d, aa, dd, rr) = _fused.image(X, Wn, parts, s, y, img, imgy, XWp, lanes)
        arrays = {"W": W1, "Wy": Wy1, "Wn": Wn, "XW": xw, "img": img1, "imgy": imgy1, "d": jnp.sum(d, 0),
                  "aa": jnp.sum(aa, 0), "dd": dd[0], "rr": rr[0]}  # fmt: skip
        return arrays, _fused.unpack(lanes)

    got, decided = run(*args, lanes, sums)
    assert float(jnp.min(decided["pending"])) == 1.0  # the kernel's candidate awaits the next decision
    np.testing.assert_array_equal(decided["accept"], want["accept"])  # and the rest up to rounding
    eps = float(jnp.finfo(dtype).eps)
    for name in _fused.ROWS:
        if name != "pending":
            np.testing.assert_allclose(np.asarray(decided[name], np.float64), want[name], rtol=8 * eps,
                                       err_msg=name)  # fmt: skip
    rtol = 1e-12 if dtype == np.float64 else 2e-4
    for name, val in got.items():
        assert val.dtype == dtype
        want_a = ref[name]
        atol = rtol * np.abs(want_a).max()
        np.testing.assert_allclose(np.asarray(val, np.float64), want_a, rtol=rtol, atol=atol, err_msg=name)
    if positive:
        assert float(jnp.min(got["Wn"])) >= 0.0


def _solve_both(make, accelerator, monkeypatch, n=70, p=256, max_iter=5000, centered=True):
    """``fista`` on one centered design model with the XLA steps and with the fused ones."""
    if accelerator:
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
        monkeypatch.setattr(_fused, "INTERPRET", True)
    rng = np.random.default_rng(p)
    X = rng.standard_normal((n, p)) + 3.0  # column means that the centering must absorb
    y = X[:, :4] @ np.array([2.0, -1.5, 1.0, 0.5]) + 0.5 * rng.standard_normal(n) + 100.0
    pen = make(p)
    B = int(np.size(pen.alpha))
    s = np.full((n, B), 1.0 / n)
    center = np.repeat((s[:, :1].T @ X).T, B, axis=1)
    # with centers, the targets centered, as solvers.run gives them to its working-set models
    y_in = y - y.mean() if centered else y
    W0, b0 = jnp.zeros((p, B, 1)), jnp.full((B, 1), y_in.mean())
    L0 = jnp.full(B, 1.05 * float(S.lipschitz(jnp.asarray(X), jnp.asarray(s[:, :1]), "closed", 50,
                                              jnp.asarray(center[:, :1]))[0]))  # fmt: skip
    tol_abs = jnp.full(B, 1e-9 * np.var(y))
    radius = (jnp.ones((p, B)), jnp.ones(B))
    out = {}
    for fused in (False, True):
        cfg = S._Config("closed", max_iter, 10, fused=fused)

        @jax.jit
        def run(X, y, s, center, pen, cfg=cfg):
            model = S._Design(X, y, s, jr.SquaredLoss(), "closed", center if centered else None)
            return S.fista(model, pen, W0, b0, L0, tol_abs, jnp.full(B, max_iter), radius, cfg)

        out[fused] = run(*(jnp.asarray(a) for a in (X, y_in, s, center)), pen)
    return X, y, pen, out


PENS = {
    "lasso": lambda p: jr.L1(alpha=np.array([0.5, 0.2, 0.08, 0.03, 0.01]), weights=np.ones((5, p))),
    "enet, positive, a free feature": lambda p: jr.ElasticNet(
        alpha=np.array([0.3, 0.05, 0.01]), l1_ratio=np.array([0.9, 0.5, 0.2]),
        weights=np.repeat(np.r_[0.0, np.ones(p - 1)][None], 3, axis=0), positive=True),
}  # fmt: skip


@pytest.mark.parametrize("accelerator", [False, True], ids=["cpu loops", "accelerator loops"])
@pytest.mark.parametrize("pen", list(PENS), ids=list(PENS))
def test_fused_steps_take_the_iterates_of_the_xla_steps(pen, accelerator, monkeypatch):
    """With the samples (70 -> 96) and the lanes (5 or 3 -> 16) padded for the kernels, every lane
    converges within a check of where it does with XLA's steps, to the same coefficients; the
    padding is gone from the result."""
    X, y, penalty, out = _solve_both(PENS[pen], accelerator, monkeypatch)
    xla, fused = out[False], out[True]
    B = xla.W.shape[1]
    assert fused.W.shape == xla.W.shape and fused.img.shape == xla.img.shape and fused.L.shape == (B,)
    np.testing.assert_array_equal(fused.status, S.Status.CONVERGED)
    # rounding may move a lane's stop by one check (of 10 steps) at tol 1e-9
    assert np.all(np.abs(np.asarray(fused.n_iter) - np.asarray(xla.n_iter)) <= 10), (fused.n_iter, xla.n_iter)
    scale = float(jnp.max(jnp.abs(xla.W)))
    np.testing.assert_allclose(fused.W, xla.W, atol=1e-6 * scale)
    if isinstance(penalty, jr.L1):  # the gap in NumPy, with the intercept of X
        for j in range(B):
            w = np.asarray(fused.W[:, j, 0])
            b = float(y.mean() - X.mean(0) @ w)
            assert numpy_gap(X, y, w, b, float(penalty.alpha[j])) <= 1e-9 * np.var(y)


@pytest.mark.parametrize("pen", list(PENS), ids=list(PENS))
def test_xla_steps_on_accelerators_check_in_stacked_sums(pen, monkeypatch):
    """Without the kernels, an accelerator's solves of a model ``_stackable`` also check in stacked
    reductions (``stacked_gap`` on an unpadded plan): every lane stops within a check of where the
    CPU's loops, with the generic gap, stop it, at the same coefficients."""
    _, _, _, cpu = _solve_both(PENS[pen], False, monkeypatch)
    plans = []
    plan = S._plan
    monkeypatch.setattr(S, "_plan", lambda *args: plans.append(args[0].X.shape) or plan(*args))
    X, _, _, acc = _solve_both(PENS[pen], True, monkeypatch)
    assert X.shape in plans  # the XLA steps' solve, on the unpadded design (the fused one pads)
    xla, ref = acc[False], cpu[False]
    np.testing.assert_array_equal(xla.status, S.Status.CONVERGED)
    assert np.all(np.abs(np.asarray(xla.n_iter) - np.asarray(ref.n_iter)) <= 10), (xla.n_iter, ref.n_iter)
    np.testing.assert_allclose(xla.W, ref.W, atol=1e-6 * float(jnp.max(jnp.abs(ref.W))))


def test_fused_steps_on_an_uncentered_design(monkeypatch):
    """Without centers (the closed-form intercept of ``X`` itself) the kernels run with zero centers:
    the iterates of XLA's steps on that model (``step_excess`` instead of ``forward_excess``)."""
    X, y, penalty, out = _solve_both(PENS["lasso"], True, monkeypatch, centered=False)
    xla, fused = out[False], out[True]
    np.testing.assert_array_equal(fused.status, S.Status.CONVERGED)
    assert np.all(np.abs(np.asarray(fused.n_iter) - np.asarray(xla.n_iter)) <= 10), (fused.n_iter, xla.n_iter)
    np.testing.assert_allclose(fused.W, xla.W, atol=1e-6 * float(jnp.max(jnp.abs(xla.W))))


@pytest.mark.parametrize("pen", list(PENS), ids=list(PENS))
def test_fused_checks_compute_the_gap_of_the_xla_checks(pen, monkeypatch):
    """The fused solves' checks sum the gap's terms in stacked reductions: after 30 steps, far from
    converged, their gaps are those of the generic checks at the (same, to rounding) iterates."""
    *_, out = _solve_both(PENS[pen], True, monkeypatch, max_iter=30)
    xla, fused = out[False], out[True]
    np.testing.assert_array_equal(fused.status, S.Status.MAX_ITER)
    np.testing.assert_array_equal(fused.n_iter, 30)
    assert np.all(np.asarray(xla.crit) > 0)
    np.testing.assert_allclose(fused.crit, xla.crit, rtol=1e-7)
    np.testing.assert_allclose(fused.F, xla.F, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_path_matches_the_xla_path(dtype, monkeypatch):
    """``jr.path`` with ``FUSED`` takes its working-set solves (buckets of 128 features and more)
    through the kernels, with the accelerators' loops and recycled lanes: the same iterations and
    solutions within ``tol`` by NumPy's gap (float64 data; float32 data at ``tol=1e-4``, within a
    check of XLA's iterations).  Other models (logistic loss) keep XLA's steps."""
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(_fused, "INTERPRET", True)
    calls = []
    grad_prox = _fused.grad_prox
    monkeypatch.setattr(_fused, "grad_prox", lambda *a: calls.append(a[0].shape) or grad_prox(*a))
    rng = np.random.default_rng(3)
    n, p = 60, 300
    X = rng.standard_normal((n, p)) + 1.0
    y = X[:, :6] @ rng.standard_normal(6) + 0.3 * rng.standard_normal(n)
    tol = 1e-6 if dtype == np.float64 else 1e-4
    fits = {}
    for fused in (False, True):
        monkeypatch.setattr(S, "FUSED", fused)
        fits[fused] = jr.path(X.astype(dtype), y.astype(dtype), alphas=40, eps=1e-2, tol=tol, block_size=16)
    assert calls and all(_fused.fits(k) and m == _fused.rows_padded(n) for m, k in calls), calls
    assert np.all(np.asarray(fits[True].converged))
    if dtype == np.float64:
        np.testing.assert_array_equal(fits[True].n_iter, fits[False].n_iter)
    else:
        assert np.all(np.abs(np.asarray(fits[True].n_iter) - np.asarray(fits[False].n_iter)) <= 10)
    tol_abs = tol * np.var(y)
    for i, alpha in enumerate(np.asarray(fits[True].alphas)):
        coef, b = np.asarray(fits[True].coef[i], np.float64), float(fits[True].intercept[i])
        assert numpy_gap(X, y, coef, b, float(alpha)) <= tol_abs
    calls.clear()
    yb = (y > np.median(y)).astype(float)
    jr.path(X, yb, jr.LogisticLoss(), alphas=5, tol=1e-4, block_size=16)
    assert not calls


def test_fused_steps_only_where_the_kernels_run(monkeypatch):
    """The kernels are Triton's: a GPU, or the interpreter (a CPU); a TPU keeps XLA's steps.  They
    also need squared loss with the intercept in closed form and several lanes."""
    n, p, B = 40, 128, 4
    X, y, s = jnp.ones((n, p)), jnp.ones(n), jnp.full((n, B), 1.0 / n)
    pen = jr.L1(alpha=jnp.ones(B), weights=jnp.ones((B, p)))
    W0 = jnp.zeros((p, B, 1))
    model = S._Design(X, y, s, jr.SquaredLoss(), "closed")
    assert S._fusable(model, pen, W0, "closed")  # the interpreter on this CPU
    for backend, ok in (("gpu", True), ("tpu", False)):
        monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
        assert S._fusable(model, pen, W0, "closed") == ok
    monkeypatch.setattr(_fused, "INTERPRET", True)
    assert not S._fusable(S._Design(X, y, s, jr.LogisticLoss(), "grad"), pen, W0, "grad")
    assert not S._fusable(model, pen, W0[:, :1], "closed")  # one lane: a matrix-vector product
    assert not S._fusable(model, pen, W0[:100], "closed")  # features the tiles do not divide


def test_fused_steps_stop_overflowing_lanes_as_xla_steps_do(monkeypatch):
    """Features near 1e150 overflow every step: with the kernels, as with XLA's steps, the lanes stop
    NONFINITE after the same iterations with finite coefficients (the rejected candidates' non-finite
    values never picked); on the data as given both converge in the same iterations."""
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(_fused, "INTERPRET", True)
    calls = []
    grad_prox = _fused.grad_prox
    monkeypatch.setattr(_fused, "grad_prox", lambda *a: calls.append(1) or grad_prox(*a))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 256))
    y = X[:, :3] @ np.ones(3) + rng.standard_normal(60)
    pen = jr.L1(jnp.asarray([0.1, 1e-3]))
    out = {}
    for fused in (False, True):
        monkeypatch.setattr(S, "FUSED", fused)
        out[fused] = [jr.solve(scale * X, y, jr.SquaredLoss(), pen, tol=1e-8) for scale in (1.0, 1e150)]
    assert calls  # the kernels took the fused solves
    (fine, over), (fine_x, over_x) = out[True], out[False]
    np.testing.assert_array_equal(fine.status, jr.Status.CONVERGED)
    np.testing.assert_array_equal(fine.n_iter, fine_x.n_iter)
    np.testing.assert_array_equal(over.status, jr.Status.NONFINITE)
    np.testing.assert_array_equal(over.n_iter, over_x.n_iter)
    assert not np.any(np.asarray(over.converged))
    assert np.all(np.isfinite(np.asarray(over.coef))) and np.all(np.isfinite(np.asarray(over.intercept)))
