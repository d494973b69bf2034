"""jaxreg.optax (proximal training of any pytree) and penalties on pytrees.

Covers: proximal SGD reaches ``jr.solve``'s lasso solution with the same exact zeros; an MLP with an
input-group lasso keeps exactly the relevant inputs, while the penalty added to the loss gives no exact
zeros; the per-coordinate (Adam-metric) variant; jit / vmap / pmap / sharding; schedules; pytree
``value`` and ``prox``; ``GroupLasso`` along rows and columns against brute force.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import jaxreg as jr
import jaxreg.optax as jro


def fit(opt: optax.GradientTransformation, loss, params, steps: int):
    """Full-batch training, ``steps`` updates of ``opt`` on ``loss(params)``, in one compiled scan."""

    @jax.jit
    def run(params):
        def body(carry, _):
            p, state = carry
            updates, state = opt.update(jax.grad(loss)(p), state, p)
            return (optax.apply_updates(p, updates), state), None

        (p, state), _ = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
        return p, state

    return run(params)


# -- a linear model: proximal gradient reaches the lasso solution ------------------------------------


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(0)
    n, p = 100, 20
    X = rng.standard_normal((n, p))
    coef = np.zeros(p)
    coef[:4] = [2.0, -1.5, 1.0, 0.5]
    y = X @ coef + 1.0 + 0.5 * rng.standard_normal(n)
    Xb = np.hstack([X, np.ones((n, 1))])
    lr = 1.0 / np.linalg.eigvalsh(Xb.T @ Xb / n)[-1]  # 1 / Lipschitz constant of the gradient in (w, b)
    X, y = jnp.asarray(X), jnp.asarray(y)

    def loss(params):
        return 0.5 * jnp.mean((y - X @ params["w"] - params["b"]) ** 2)

    params0 = {"w": jnp.zeros(p), "b": jnp.zeros(())}
    ref = jr.solve(X, y, jr.SquaredLoss(), jr.L1(jnp.asarray(ALPHAS)), tol=1e-12, max_iter=100_000)
    assert bool(np.all(ref.converged))
    return X, y, loss, params0, float(lr), ref


ALPHAS = [0.3, 0.1, 0.03]


def test_proximal_sgd_reaches_lasso_solution(linear):
    X, y, loss, params0, lr, ref = linear
    alpha, coef, intercept = ALPHAS[1], ref.coef[1], ref.intercept[1]
    assert 0 < int(np.sum(coef != 0)) < X.shape[1]
    penalties = {"w": jr.L1(alpha), "b": None}
    opt = optax.chain(optax.sgd(lr), jro.proximal(penalties, lr))
    params, _ = fit(opt, loss, params0, 400)
    w = np.asarray(params["w"])
    np.testing.assert_array_equal(w == 0, np.asarray(coef) == 0)
    np.testing.assert_allclose(w, coef, atol=1e-10)
    np.testing.assert_allclose(params["b"], intercept, atol=1e-10)


def test_heavy_ball_with_scaled_prox_step_reaches_lasso_solution(linear):
    """Documented rule: after ``sgd(lr, momentum=beta)`` the prox step is ``lr / (1 - beta)``."""
    X, y, loss, params0, lr, ref = linear
    alpha, coef, beta = ALPHAS[1], ref.coef[1], 0.5
    prox = jro.proximal({"w": jr.L1(alpha), "b": None}, lr / (1 - beta))
    opt = optax.chain(optax.sgd(lr, momentum=beta), prox)
    params, _ = fit(opt, loss, params0, 600)
    np.testing.assert_array_equal(np.asarray(params["w"]) == 0, np.asarray(coef) == 0)
    np.testing.assert_allclose(params["w"], coef, atol=1e-10)


def test_proximal_adam_reaches_lasso_solution_and_adam_then_prox_does_not(linear):
    X, y, loss, params0, lr, ref = linear
    alpha, coef = ALPHAS[1], ref.coef[1]
    penalties = {"w": jr.L1(alpha), "b": None}
    params, state = fit(jro.proximal_adam(penalties, 0.01), loss, params0, 3000)
    assert isinstance(state, jro.ProximalAdamState)
    np.testing.assert_array_equal(np.asarray(params["w"]) == 0, np.asarray(coef) == 0)
    np.testing.assert_allclose(params["w"], coef, atol=1e-8)
    # The base-learning-rate prox after Adam solves a problem reweighted by Adam's denominators.
    chained, _ = fit(optax.chain(optax.adam(0.01), jro.proximal(penalties, 0.01)), loss, params0, 3000)
    assert np.abs(np.asarray(chained["w"]) - np.asarray(coef)).max() > 1e-2


def test_vmap_over_alphas_matches_batched_solve(linear):
    X, y, loss, params0, lr, ref = linear
    alphas = jnp.asarray(ALPHAS)

    def one(alpha):
        opt = optax.chain(optax.sgd(lr), jro.proximal({"w": jr.L1(alpha), "b": None}, lr))
        return fit(opt, loss, params0, 800)[0]["w"]

    W = jax.vmap(one)(alphas)
    np.testing.assert_array_equal(np.asarray(W) == 0, np.asarray(ref.coef) == 0)
    np.testing.assert_allclose(W, ref.coef, atol=1e-9)


# -- the transformation itself -------------------------------------------------------------------------


def _tree(seed: int):
    rng = np.random.default_rng(seed)
    return {
        "W": jnp.asarray(rng.standard_normal((6, 4))),
        "b": jnp.asarray(rng.standard_normal(4)),
        "s": jnp.asarray(rng.standard_normal(())),
    }


PENALTIES = {"W": jr.GroupLasso(alpha=0.8, axis=1), "b": jr.L1(alpha=1.5), "s": None}


def test_update_is_prox_of_moved_params_and_state_is_namedtuple():
    params, updates = _tree(0), _tree(1)
    opt = jro.proximal(PENALTIES, 0.7)
    state = opt.init(params)
    assert isinstance(state, jro.ProximalState) and state._fields == ("count",)
    assert state.count.dtype == jnp.int32 and state.count.shape == ()
    new_updates, state = jax.jit(opt.update)(updates, state, params)
    assert int(state.count) == 1
    moved = jax.tree_util.tree_map(jnp.add, params, updates)
    expected = jax.jit(jr.tree_prox)(PENALTIES, moved, 0.7)
    new_params = optax.apply_updates(params, new_updates)
    for key in params:
        np.testing.assert_allclose(new_params[key], expected[key], atol=1e-14)
        assert new_updates[key].dtype == updates[key].dtype
    np.testing.assert_array_equal(new_params["s"], moved["s"])
    # exact zeros survive apply_updates
    np.testing.assert_array_equal(new_params["b"] == 0, expected["b"] == 0)
    assert np.any(np.asarray(expected["b"]) == 0)


def test_update_requires_params():
    opt = jro.proximal(jr.L1(1.0), 0.1)
    with pytest.raises(ValueError, match="params"):
        opt.update(_tree(0), opt.init(_tree(0)))


def test_jit_matches_eager_and_float32_is_preserved():
    params, updates = _tree(0), _tree(1)
    opt = jro.proximal(PENALTIES, 0.7)
    eager, _ = opt.update(updates, opt.init(params), params)
    jitted, state = jax.jit(opt.update)(updates, opt.init(params), params)
    for key in params:
        np.testing.assert_allclose(jitted[key], eager[key], atol=1e-14)
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    u32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), updates)
    out, _ = jax.jit(opt.update)(u32, opt.init(p32), p32)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(out))


def test_new_alpha_does_not_recompile():
    traces = []

    @jax.jit
    def step(penalties, updates, state, params):
        traces.append(1)
        return jro.proximal(penalties, 0.5).update(updates, state, params)

    params, updates = _tree(0), _tree(1)
    state = jro.proximal(PENALTIES, 0.5).init(params)
    outs = [
        optax.apply_updates(params, step({**PENALTIES, "b": jr.L1(alpha)}, updates, state, params)[0])["b"]
        for alpha in (0.1, 0.5, 2.0)
    ]
    assert len(traces) == 1
    zeros = [int(np.sum(np.asarray(b) == 0)) for b in outs]
    assert zeros[0] < zeros[2]


def test_vmap_over_a_batch_of_models():
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), _tree(0), _tree(2), _tree(4))
    updates = jax.tree_util.tree_map(lambda *a: jnp.stack(a), _tree(1), _tree(3), _tree(5))
    opt = jro.proximal(PENALTIES, 0.7)
    states = jax.vmap(opt.init)(params)
    batched, states = jax.jit(jax.vmap(opt.update))(updates, states, params)
    np.testing.assert_array_equal(states.count, [1, 1, 1])
    update = jax.jit(opt.update)
    for i in range(3):
        pick = lambda t: jax.tree_util.tree_map(lambda a: a[i], t)  # noqa: E731
        single, _ = update(pick(updates), opt.init(pick(params)), pick(params))
        for key in single:
            np.testing.assert_allclose(batched[key][i], single[key], atol=1e-14)


def test_pmap_and_sharded_params():
    """In a fresh process with two host devices: pmap and row-sharded params give the same updates."""
    script = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import jax, jax.numpy as jnp, numpy as np, optax
        from jax.sharding import NamedSharding, PartitionSpec
        import jaxreg as jr, jaxreg.optax as jro

        assert jax.device_count() == 2
        rng = np.random.default_rng(0)
        make = lambda: {"W": jnp.asarray(rng.standard_normal((8, 4)), jnp.float32),
                        "v": jnp.asarray(rng.standard_normal(8), jnp.float32)}
        pens = {"W": jr.GroupLasso(alpha=0.6, axis=1), "v": jr.L1(alpha=0.4)}
        opt = jro.proximal(pens, 0.5)
        params, updates = make(), make()
        ref, _ = opt.update(updates, opt.init(params), params)

        rows = NamedSharding(jax.make_mesh((2,), ("d",)), PartitionSpec("d"))
        sp, su = jax.device_put(params, rows), jax.device_put(updates, rows)
        out, _ = jax.jit(opt.update)(su, opt.init(sp), sp)
        for k in ref:
            np.testing.assert_allclose(out[k], ref[k], atol=1e-6)
        assert out["W"].sharding.is_equivalent_to(rows, 2)

        stack = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.stack([x, y]), a, b)
        params2, updates2 = make(), make()
        P, U = stack(params, params2), stack(updates, updates2)
        out_p, st = jax.pmap(opt.update)(U, jax.pmap(opt.init)(P), P)
        out_v, _ = jax.vmap(opt.update)(U, jax.vmap(opt.init)(P), P)
        for k in ref:
            np.testing.assert_allclose(out_p[k], out_v[k], atol=1e-6)
        np.testing.assert_array_equal(st.count, [1, 1])
        print("OK")
        """
    )
    root = str(Path(jr.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")


def test_schedule_is_evaluated_at_the_step_count():
    schedule = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.5)
    pen = jr.L1(alpha=1.0)
    opt = jro.proximal(pen, schedule)
    params = {"w": jnp.array([3.0, -2.0, 0.6])}
    zero = {"w": jnp.zeros(3)}
    state = opt.init(params)
    update = jax.jit(opt.update)
    expected = params["w"]
    for k in range(4):
        updates, state = update(zero, state, params)
        params = optax.apply_updates(params, updates)
        expected = pen.prox(expected, schedule(k))
        np.testing.assert_allclose(params["w"], expected, atol=1e-15)
    assert int(state.count) == 4


def test_schedule_in_sgd_and_prox_is_ista_with_varying_steps(linear):
    X, y, loss, params0, lr, ref = linear
    schedule = optax.linear_schedule(lr, 0.5 * lr, transition_steps=10)
    pens = {"w": jr.L1(alpha=0.2), "b": None}
    params, _ = fit(optax.chain(optax.sgd(schedule), jro.proximal(pens, schedule)), loss, params0, 15)

    @jax.jit
    def ista_step(params, step):
        moved = jax.tree_util.tree_map(lambda p, g: p - step * g, params, jax.grad(loss)(params))
        return jr.tree_prox(pens, moved, step)

    manual = params0
    for k in range(15):
        manual = ista_step(manual, schedule(k))
    np.testing.assert_allclose(params["w"], manual["w"], atol=1e-13)
    np.testing.assert_allclose(params["b"], manual["b"], atol=1e-13)


def test_inject_hyperparams():
    opt = optax.inject_hyperparams(jro.proximal)(penalties=jr.L1(alpha=1.0), learning_rate=0.1)
    params = {"w": jnp.array([1.0, 0.05])}
    state = opt.init(params)
    state.hyperparams["learning_rate"] = jnp.asarray(0.5)
    updates, _ = opt.update({"w": jnp.zeros(2)}, state, params)
    np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], [0.5, 0.0])


def test_proximal_adam_without_penalty_is_adam():
    params, grads = _tree(0), _tree(1)
    ours, theirs = jro.proximal_adam(None, 0.01), optax.adam(0.01)
    s1, s2 = ours.init(params), theirs.init(params)
    update1, update2 = jax.jit(ours.update), jax.jit(theirs.update)
    for _ in range(3):
        u1, s1 = update1(grads, s1, params)
        u2, s2 = update2(grads, s2, params)
        for key in params:
            np.testing.assert_allclose(u1[key], u2[key], rtol=1e-12, atol=1e-15)
        params = optax.apply_updates(params, u1)


def test_proximal_adam_step_is_prox_in_adam_metric():
    """One step equals ``prox`` with per-coordinate steps ``lr / d`` at Adam's point ``w + u``."""
    params, grads = _tree(0), _tree(1)
    lr, b2, eps = 0.3, 0.999, 1e-8
    opt = jro.proximal_adam(PENALTIES, lr, b2=b2, eps=eps)
    updates, state = jax.jit(opt.update)(grads, opt.init(params), params)
    adam_u, _ = jax.jit(optax.adam(lr, b2=b2, eps=eps).update)(grads, optax.adam(lr).init(params), params)
    steps = jax.tree_util.tree_map(lambda v: lr / (jnp.sqrt(v / (1 - b2)) + eps), state.nu)
    moved = jax.tree_util.tree_map(jnp.add, params, adam_u)
    expected = jax.jit(jr.tree_prox)(PENALTIES, moved, steps)
    got = optax.apply_updates(params, updates)
    for key in params:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, atol=1e-14)
    # after one step v_hat = g**2, so the steps are lr / |g|: the L1 part zeroes |w + u| <= lr * alpha / |g|
    assert np.any(np.asarray(got["b"]) == 0)


# -- a small MLP where 5 of 50 inputs matter ---------------------------------------------------------

N_SAMPLES, N_INPUTS, N_HIDDEN = 4000, 50, 8
RELEVANT = [3, 11, 24, 37, 42]


@pytest.fixture(scope="module")
def mlp_task():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_INPUTS))
    x = X[:, RELEVANT]
    y = (
        2.0 * np.tanh(x[:, 0])
        - np.tanh(2.0 * x[:, 1])
        + np.tanh(x[:, 2] - 1.0)
        + 1.5 * np.tanh(x[:, 3] + 1.0)
        - x[:, 4]
        + 0.1 * rng.standard_normal(N_SAMPLES)
    )
    X, y = jnp.asarray(X), jnp.asarray(y)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params0 = {
        "W1": jax.random.normal(k1, (N_INPUTS, N_HIDDEN)) / np.sqrt(N_INPUTS),
        "b1": jnp.zeros(N_HIDDEN),
        "W2": jax.random.normal(k2, (N_HIDDEN,)) / np.sqrt(N_HIDDEN),
        "b2": jnp.zeros(()),
    }

    def mse(params):
        hidden = jnp.tanh(X @ params["W1"] + params["b1"])
        return 0.5 * jnp.mean((hidden @ params["W2"] + params["b2"] - y) ** 2)

    return mse, params0, float(jnp.var(y))


def _kept_inputs(params) -> list[int]:
    return np.flatnonzero(np.any(np.asarray(params["W1"]) != 0, axis=1)).tolist()


# input groups: row j of W1 (x @ W1) holds every weight leaving input j; L2 on W2 is weight decay
MLP_PENALTIES = {"W1": jr.GroupLasso(alpha=0.03, axis=0), "b1": None, "W2": jr.L2(alpha=0.01), "b2": None}


def test_mlp_input_group_lasso_keeps_exactly_the_relevant_inputs(mlp_task):
    mse, params0, var_y = mlp_task
    lr = 0.3
    params, _ = fit(optax.chain(optax.sgd(lr), jro.proximal(MLP_PENALTIES, lr)), mse, params0, 1500)
    assert _kept_inputs(params) == RELEVANT
    assert float(mse(params)) < 0.05 * var_y
    rows = np.linalg.norm(np.asarray(params["W1"]), axis=1)
    assert rows[RELEVANT].min() > 0.1


def test_mlp_proximal_adam_with_group_lasso(mlp_task):
    mse, params0, var_y = mlp_task
    params, _ = fit(jro.proximal_adam(MLP_PENALTIES, 0.02), mse, params0, 1500)
    assert _kept_inputs(params) == RELEVANT
    assert float(mse(params)) < 0.05 * var_y


@pytest.mark.parametrize(
    "penalty", [jr.L1(alpha=0.01), jr.GroupLasso(alpha=0.03, axis=0)], ids=["L1", "GroupLasso"]
)
def test_mlp_penalty_added_to_loss_gives_no_exact_zeros(mlp_task, penalty):
    mse, params0, _ = mlp_task
    penalties = {**MLP_PENALTIES, "W1": penalty}

    def objective(params):
        return mse(params) + jr.tree_value(penalties, params)

    params, _ = fit(optax.sgd(0.3), objective, params0, 1500)
    W1 = np.asarray(params["W1"])
    assert np.all(W1 != 0)
    # the irrelevant inputs are small but not removed; the prox removes them (see above)
    assert np.abs(np.delete(W1, RELEVANT, axis=0)).max() < np.abs(W1[RELEVANT]).max()


def test_equinox_model_column_groups():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(6, 1, 4, 1, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(model, eqx.is_array)
    # eqx.nn.Linear stores (out_features, in_features): input features are the columns
    penalties = jax.tree_util.tree_map(lambda _: None, params)
    penalties = eqx.tree_at(
        lambda m: m.layers[0].weight, penalties, jr.GroupLasso(alpha=2.0, axis=1), is_leaf=lambda x: x is None
    )
    opt = jro.proximal(penalties, 0.1)
    state = opt.init(params)
    update = jax.jit(opt.update)
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    for _ in range(3):
        updates, state = update(zero, state, params)
        params = eqx.apply_updates(params, updates)
    W = np.asarray(params.layers[0].weight)
    W0 = np.asarray(model.layers[0].weight)
    dead = np.linalg.norm(W0, axis=0) <= 3 * 0.1 * 2.0
    assert dead.any() and not dead.all()
    np.testing.assert_array_equal(np.all(W == 0, axis=0), dead)
    np.testing.assert_array_equal(params.layers[1].weight, model.layers[1].weight)
    out = eqx.combine(params, static)(jnp.ones(6))
    assert out.shape == (1,)


# -- penalties on pytrees ----------------------------------------------------------------------------


def test_value_of_a_pytree_is_the_sum_over_leaves():
    tree = {"a": jnp.array([1.0, -2.0]), "b": [jnp.array([[0.5, 0.0], [3.0, -1.0]]), jnp.array(-4.0)]}
    leaves = jax.tree_util.tree_leaves(tree)
    for pen in [jr.L1(alpha=0.3), jr.L2(alpha=0.7), jr.ElasticNet(alpha=0.5, l1_ratio=0.2)]:
        expected = sum(float(pen.value(jnp.atleast_1d(x))) for x in leaves)
        np.testing.assert_allclose(pen.value(tree), expected, rtol=1e-14)
    np.testing.assert_allclose(jr.L1(alpha=0.3).value(tree), 0.3 * 11.5, rtol=1e-14)
    assert float(jr.L1().value({})) == 0.0


def test_prox_of_a_pytree_is_leafwise():
    tree = _tree(3)
    pen = jr.ElasticNet(alpha=0.6, l1_ratio=0.7)
    out = pen.prox(tree, 0.9)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(tree)
    for key in tree:
        np.testing.assert_allclose(out[key], pen.prox(tree[key], 0.9))
        assert out[key].shape == tree[key].shape
    steps = jax.tree_util.tree_map(lambda a: jnp.full(a.shape, 0.4), tree)
    out_tree_step = pen.prox(tree, steps)
    for key in tree:
        np.testing.assert_allclose(out_tree_step[key], pen.prox(tree, 0.4)[key], atol=1e-15)


def test_tree_value_and_tree_prox_with_none_and_shared_penalty():
    params = _tree(5)
    value = jr.tree_value(PENALTIES, params)
    np.testing.assert_allclose(value, PENALTIES["W"].value(params["W"]) + PENALTIES["b"].value(params["b"]))
    out = jr.tree_prox(PENALTIES, params, 0.3)
    np.testing.assert_array_equal(out["s"], params["s"])
    np.testing.assert_allclose(out["W"], PENALTIES["W"].prox(params["W"], 0.3))
    shared = jr.tree_prox(jr.L1(alpha=0.5), params, 0.3)
    for key in params:
        np.testing.assert_allclose(shared[key], jr.L1(alpha=0.5).prox(params[key], 0.3))
    np.testing.assert_allclose(jr.tree_value(jr.L1(alpha=0.5), params), jr.L1(alpha=0.5).value(params))
    assert float(jr.tree_value(None, params)) == 0.0
    # a penalty for a whole subtree
    nested = {"layer": {"w": params["W"], "b": params["b"]}, "head": params["s"]}
    out = jr.tree_prox({"layer": jr.L1(alpha=0.5), "head": None}, nested, 0.3)
    np.testing.assert_allclose(out["layer"]["b"], jr.L1(alpha=0.5).prox(params["b"], 0.3))


def test_bad_penalty_trees_raise():
    params = _tree(0)
    with pytest.raises(TypeError, match="penalt"):
        jr.tree_prox({"W": 0.5, "b": None, "s": None}, params, 0.1)
    with pytest.raises(ValueError, match="weights"):
        jr.L1(alpha=1.0, weights=jnp.ones(3)).value({"W": params["W"]})
    with pytest.raises(ValueError, match="axis"):
        jr.GroupLasso(alpha=1.0, axis=1).prox({"b": params["b"]}, 0.1)
    with pytest.raises(ValueError, match="groups"):
        jr.GroupLasso(alpha=1.0, groups=(0, 0, 1), axis=1).value(params["W"])


# -- GroupLasso along an axis -----------------------------------------------------------------------


def _group_lasso_value(z: np.ndarray, alpha: float, labels: np.ndarray, axis: int) -> float:
    """``alpha * sum_g sqrt(|g|) ||z_g||`` in NumPy, groups along ``axis``."""
    z = np.moveaxis(z, axis, 0)
    norms = [np.sqrt(np.sum(labels == g)) * np.linalg.norm(z[labels == g]) for g in np.unique(labels)]
    return alpha * sum(norms)


def _brute_force_prox(value, w: np.ndarray, step: np.ndarray):
    def objective(z):
        z = z.reshape(w.shape)
        return 0.5 * np.sum((z - w) ** 2 / step) + value(z)

    best = None
    for start in (w.ravel(), np.zeros(w.size)):
        options = {"xtol": 1e-12, "ftol": 1e-14, "maxfev": 100_000}
        res = minimize(objective, start, method="Powell", options=options)
        best = res if best is None or res.fun < best.fun else best
    return best.x.reshape(w.shape), objective


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("groups", [None, (0, 1, 1)], ids=["each", "labels"])
@pytest.mark.parametrize("per_coordinate", [False, True], ids=["scalar-step", "metric"])
def test_group_lasso_axis_prox_minimizes(axis, groups, per_coordinate):
    rng = np.random.default_rng(7 + axis)
    shape = (3, 2) if axis == 0 else (2, 3)
    w = rng.standard_normal(shape)
    w[(0, 0)] *= 0.1
    step = np.exp(rng.uniform(-1, 1, shape)) if per_coordinate else np.full(shape, 0.8)
    pen = jr.GroupLasso(alpha=0.6, groups=groups, axis=axis)
    z = np.asarray(pen.prox(jnp.asarray(w), jnp.asarray(step) if per_coordinate else 0.8))
    labels = np.arange(3) if groups is None else np.asarray(groups)
    z_bf, objective = _brute_force_prox(lambda v: _group_lasso_value(v, 0.6, labels, axis), w, step)
    np.testing.assert_allclose(pen.value(w), _group_lasso_value(w, 0.6, labels, axis), rtol=1e-14)
    assert objective(z.ravel()) <= objective(z_bf.ravel()) + 1e-10
    np.testing.assert_allclose(z, z_bf, atol=1e-5)


def test_group_lasso_rows_and_columns():
    rng = np.random.default_rng(1)
    W = jnp.asarray(rng.standard_normal((5, 3)))
    rows, cols = jr.GroupLasso(alpha=0.9, axis=0), jr.GroupLasso(alpha=0.9, axis=1)
    np.testing.assert_allclose(cols.prox(W, 0.7), rows.prox(W.T, 0.7).T)
    np.testing.assert_allclose(cols.value(W), rows.value(W.T))
    np.testing.assert_allclose(rows.prox(W, 0.7), jr.GroupLasso.contiguous(5, 1, alpha=0.9).prox(W, 0.7))
    np.testing.assert_allclose(rows.value(W), 0.9 * np.linalg.norm(W, axis=1).sum())
    # exact zero rows: those with norm <= step * alpha
    Z = np.asarray(rows.prox(W, 0.7))
    np.testing.assert_array_equal(np.all(Z == 0, axis=1), np.linalg.norm(W, axis=1) <= 0.7 * 0.9)
    # explicit groups of columns carry the sqrt(|g|) factor
    two = jr.GroupLasso(alpha=0.9, groups=(0, 0, 1), axis=1)
    np.testing.assert_allclose(
        two.value(W), 0.9 * (np.sqrt(2) * np.linalg.norm(W[:, :2]) + np.linalg.norm(W[:, 2])), rtol=1e-14
    )
    # the solver keeps grouping features (axis=0) and says so
    with pytest.raises(ValueError, match="axis"):
        jr.solve(np.ones((4, 3)), np.arange(4.0), jr.SquaredLoss(), jr.GroupLasso(alpha=0.1, axis=1))


_metric_prox = jax.jit(lambda w, s: jr.GroupLasso(alpha=0.7, groups=(0, 0, 1, 2, 2, 2), axis=0).prox(w, s))
_GROUPS = np.array([0, 0, 1, 2, 2, 2])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    spread=st.floats(0.0, 12.0),
)
def test_group_lasso_metric_prox_optimality(seed, spread):
    """KKT conditions of ``min_z sum_j (z_j - w_j)**2 / (2 s_j) + g(z)`` for each group."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((6, 3)) * np.exp(rng.uniform(-spread, spread, (6, 1)))
    s = np.exp(rng.uniform(-spread, spread, (6, 3)))
    z = np.asarray(_metric_prox(jnp.asarray(w), jnp.asarray(s)))
    assert np.all(np.isfinite(z))
    for g in range(3):
        lam = 0.7 * np.sqrt(np.sum(_GROUPS == g))
        zg, wg, sg = z[_GROUPS == g], w[_GROUPS == g], s[_GROUPS == g]
        scale = max(np.abs(wg / sg).max(), lam)
        if np.all(zg == 0):
            assert np.linalg.norm(wg / sg) <= lam * (1 + 1e-12)
        else:
            residual = (wg - zg) / sg - lam * zg / np.linalg.norm(zg)
            assert np.abs(residual).max() <= 1e-9 * scale


def test_separable_prox_with_per_coordinate_steps():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 2))
    s = np.exp(rng.uniform(-2, 2, w.shape))
    pen = jr.ElasticNet(alpha=0.8, l1_ratio=0.6, weights=jnp.array([1.0, 0.0, 2.0, 1.0, 0.5]))
    z = np.asarray(pen.prox(jnp.asarray(w), jnp.asarray(s)))
    for idx in np.ndindex(w.shape):
        single = pen.prox(jnp.asarray(w), float(s[idx]))
        np.testing.assert_allclose(z[idx], single[idx], rtol=1e-14)
