"""Bad inputs raise ValueError or TypeError naming the argument, before anything is compiled."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registry import GROUPS, N, P, make_data

import jaxreg as jr

X0, Y0 = make_data("squared")
Y_LOGISTIC = (Y0 > np.median(Y0)).astype(float)
Y_COUNTS = np.arange(N, dtype=float) % 4


def names(arg: str) -> str:
    """A regex matching ``arg`` as a word of the message."""
    return rf"(?<![A-Za-z_]){re.escape(arg)}(?![A-Za-z_])"


def solve(X=X0, y=Y0, loss=None, penalty=None, **kw):
    return jr.solve(
        X, y, jr.SquaredLoss() if loss is None else loss, jr.L1(0.1) if penalty is None else penalty, **kw
    )


def with_value(a, index, value):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


CASES = {
    # X
    "X NaN": ({"X": with_value(X0, (3, 2), np.nan)}, "X"),
    "X inf": ({"X": with_value(X0, (0, 0), np.inf)}, "X"),
    "X -inf": ({"X": with_value(X0, (5, 1), -np.inf)}, "X"),
    "X 1-D": ({"X": X0[:, 0]}, "X"),
    "X 3-D": ({"X": X0[:, :, None]}, "X"),
    "X no samples": ({"X": X0[:0], "y": Y0[:0]}, "X"),
    "X no features": ({"X": X0[:, :0]}, "X"),
    "X complex": ({"X": X0 + 1j}, "X"),
    "X strings": ({"X": np.full((N, P), "a")}, "X"),
    "X ragged": ({"X": [[1.0, 2.0]] * (N - 1) + [[1.0]]}, "X"),
    "X objects": ({"X": np.full((N, P), None)}, "X"),
    # y
    "y NaN": ({"y": with_value(Y0, 4, np.nan)}, "y"),
    "y inf": ({"y": with_value(Y0, 0, np.inf)}, "y"),
    "y too short": ({"y": Y0[:-1]}, "y"),
    "y too long": ({"y": np.concatenate([Y0, [1.0]])}, "y"),
    "y 2-D": ({"y": np.column_stack([Y0, Y0])}, "y"),
    "y strings": ({"y": np.full(N, "a")}, "y"),
    # sample_weight
    "sample_weight NaN": ({"sample_weight": with_value(np.ones(N), 2, np.nan)}, "sample_weight"),
    "sample_weight inf": ({"sample_weight": with_value(np.ones(N), 2, np.inf)}, "sample_weight"),
    "sample_weight negative": ({"sample_weight": with_value(np.ones(N), 7, -1.0)}, "sample_weight"),
    "sample_weight all zero": ({"sample_weight": np.zeros(N)}, "sample_weight"),
    "sample_weight short": ({"sample_weight": np.ones(N - 3)}, "sample_weight"),
    "sample_weight 2-D": ({"sample_weight": np.ones((N, 2))}, "sample_weight"),
    # penalties
    "alpha negative": ({"penalty": jr.L1(-0.1)}, "alpha"),
    "alpha NaN": ({"penalty": jr.L2(np.nan)}, "alpha"),
    "alpha inf": ({"penalty": jr.ElasticNet(np.inf)}, "alpha"),
    "alpha one negative in a batch": ({"penalty": jr.L1(jnp.array([0.1, -1e-9]))}, "alpha"),
    "alpha string": ({"penalty": jr.L1("0.1")}, "alpha"),
    "l1_ratio below 0": ({"penalty": jr.ElasticNet(0.1, -0.1)}, "l1_ratio"),
    "l1_ratio above 1": ({"penalty": jr.ElasticNet(0.1, 1.5)}, "l1_ratio"),
    "l1_ratio NaN": ({"penalty": jr.ElasticNet(0.1, np.nan)}, "l1_ratio"),
    "weights negative": ({"penalty": jr.L1(0.1, weights=with_value(np.ones(P), 1, -1.0))}, "weights"),
    "weights NaN": ({"penalty": jr.L2(0.1, weights=with_value(np.ones(P), 1, np.nan))}, "weights"),
    "weights too short": ({"penalty": jr.ElasticNet(0.1, weights=np.ones(P - 1))}, "weights"),
    "weights too long": ({"penalty": jr.L1(0.1, weights=np.ones(P + 1))}, "weights"),
    "group weights sized by features": (
        {"penalty": jr.GroupLasso(0.1, groups=GROUPS, weights=np.ones(P))},
        "weights",
    ),
    "groups wrong length": ({"penalty": jr.GroupLasso(0.1, groups=GROUPS[:-1])}, "groups"),
    "penalty not a penalty": ({"penalty": 0.1}, "penalty"),
    "penalty class": ({"penalty": jr.L1}, "penalty"),
    # losses and their targets
    "loss not a loss": ({"loss": "squared"}, "loss"),
    "logistic labels -1 and 1": ({"loss": jr.LogisticLoss(), "y": 2 * Y_LOGISTIC - 1}, "y"),
    "logistic labels 0, 1, 2": ({"loss": jr.LogisticLoss(), "y": with_value(Y_LOGISTIC, 0, 2.0)}, "y"),
    "logistic single class": ({"loss": jr.LogisticLoss(), "y": np.ones(N)}, "y"),
    "logistic probabilities": ({"loss": jr.LogisticLoss(), "y": np.full(N, 0.5)}, "y"),
    "poisson negative count": ({"loss": jr.PoissonLoss(), "y": with_value(Y_COUNTS, 3, -1.0)}, "y"),
    "poisson all zero": ({"loss": jr.PoissonLoss(), "y": np.zeros(N)}, "y"),
    "multinomial fractional label": ({"loss": jr.MultinomialLoss(), "y": with_value(Y_COUNTS, 1, 0.5)}, "y"),
    "multinomial negative label": ({"loss": jr.MultinomialLoss(), "y": with_value(Y_COUNTS, 1, -1.0)}, "y"),
    "multinomial single class": ({"loss": jr.MultinomialLoss(), "y": np.zeros(N)}, "y"),
    "multinomial label out of range": ({"loss": jr.MultinomialLoss(3), "y": Y_COUNTS}, "n_classes"),
    "multinomial missing class": ({"loss": jr.MultinomialLoss(), "y": 2 * (Y_COUNTS % 2)}, "y"),
    # solver settings
    "tol negative": ({"tol": -1e-4}, "tol"),
    "tol NaN": ({"tol": np.nan}, "tol"),
    "tol inf": ({"tol": np.inf}, "tol"),
    "tol string": ({"tol": "1e-4"}, "tol"),
    "tol None": ({"tol": None}, "tol"),
    "tol array": ({"tol": np.array([1e-4, 1e-3])}, "tol"),
    "max_iter zero": ({"max_iter": 0}, "max_iter"),
    "max_iter negative": ({"max_iter": -5}, "max_iter"),
    "max_iter float": ({"max_iter": 100.0}, "max_iter"),
    "max_iter bool": ({"max_iter": True}, "max_iter"),
    "max_iter string": ({"max_iter": "100"}, "max_iter"),
    "check_every zero": ({"check_every": 0}, "check_every"),
    "coef_init wrong size": ({"coef_init": np.zeros(P - 1)}, "coef_init"),
    "intercept_init wrong size": ({"intercept_init": np.zeros(2)}, "intercept_init"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_raises_naming_the_argument(case):
    kwargs, arg = CASES[case]
    with pytest.raises((ValueError, TypeError), match=names(arg)):
        solve(**kwargs)


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match=names("loss")):
        solve(loss=jr.SquaredLoss)
    with pytest.raises(TypeError, match=names("penalty")):
        solve(penalty="l1")
    with pytest.raises(TypeError, match=names("alpha")):
        solve(penalty=jr.L1(object()))


def test_integer_and_boolean_X_are_converted():
    Xi = np.round(4 * X0).astype(np.int64)
    Xb = X0 > 0
    for Xc in (Xi, Xb, Xi.astype(np.int32), Xi.tolist()):
        res = solve(X=Xc, penalty=jr.L1(0.05), tol=1e-10)
        ref = solve(X=np.asarray(Xc, dtype=np.float64), penalty=jr.L1(0.05), tol=1e-10)
        assert res.coef.dtype == jnp.float64
        np.testing.assert_array_equal(res.coef, ref.coef)
    # integer y and sample weights as well
    res = solve(y=np.round(Y0).astype(int), sample_weight=np.arange(N) % 3, penalty=jr.L1(0.05))
    assert res.coef.dtype == jnp.float64 and np.all(np.isfinite(np.asarray(res.coef)))


def test_y_as_a_column_is_accepted():
    res = solve(y=Y0[:, None], penalty=jr.L1(0.05), tol=1e-10)
    ref = solve(penalty=jr.L1(0.05), tol=1e-10)
    np.testing.assert_array_equal(res.coef, ref.coef)


def test_penalty_methods_check_group_shapes():
    with pytest.raises(ValueError, match=names("GroupLasso")):
        jr.GroupLasso(1.0, groups=GROUPS).prox(jnp.ones(P + 1), 1.0)
    with pytest.raises(TypeError, match=names("groups")):
        jr.GroupLasso(1.0, groups=3)


def test_multinomial_needs_its_number_of_classes():
    with pytest.raises(ValueError, match=names("n_classes")):
        _ = jr.MultinomialLoss().n_outputs


# -- random malformed inputs ---------------------------------------------------------------------------------

DEFECTS = {
    "X_nonfinite": "X",
    "X_ndim": "X",
    "X_empty": "X",
    "y_nonfinite": "y",
    "y_length": "y",
    "sw_nonfinite": "sample_weight",
    "sw_negative": "sample_weight",
    "sw_zero": "sample_weight",
    "sw_length": "sample_weight",
    "alpha": "alpha",
    "l1_ratio": "l1_ratio",
    "weights_value": "weights",
    "weights_size": "weights",
    "logistic_labels": "y",
    "poisson_counts": "y",
    "tol": "tol",
    "max_iter": "max_iter",
}

bad_reals = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def malformed(draw):
    n, p = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.standard_normal((n, p))
    y = rng.standard_normal(n)
    kw = {"X": X, "y": y, "loss": jr.SquaredLoss(), "penalty": jr.L1(0.1)}
    defect = draw(st.sampled_from(sorted(DEFECTS)))
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, p - 1))
    if defect == "X_nonfinite":
        X[i, j] = draw(bad_reals)
    elif defect == "X_ndim":
        kw["X"] = draw(st.sampled_from([X.ravel(), X[..., None], X[None], np.float64(1.0)]))
    elif defect == "X_empty":
        kw["X"] = draw(st.sampled_from([X[:0], X[:, :0]]))
        kw["y"] = y[:0] if kw["X"].shape[0] == 0 else y
    elif defect == "y_nonfinite":
        y[i] = draw(bad_reals)
    elif defect == "y_length":
        kw["y"] = rng.standard_normal(n + draw(st.sampled_from([-1, 1, 2])))
    elif defect == "sw_nonfinite":
        kw["sample_weight"] = with_value(np.ones(n), i, draw(bad_reals))
    elif defect == "sw_negative":
        kw["sample_weight"] = with_value(np.ones(n), i, -draw(st.floats(1e-12, 1e6)))
    elif defect == "sw_zero":
        kw["sample_weight"] = np.zeros(n)
    elif defect == "sw_length":
        kw["sample_weight"] = np.ones(n + draw(st.sampled_from([-1, 1, 3])))
    elif defect == "alpha":
        a = draw(st.one_of(st.floats(max_value=-1e-300), bad_reals))
        kw["penalty"] = draw(st.sampled_from([jr.L1, jr.L2, jr.ElasticNet]))(a)
    elif defect == "l1_ratio":
        r = draw(st.one_of(st.floats(max_value=-1e-12), st.floats(min_value=1 + 1e-12), bad_reals))
        kw["penalty"] = jr.ElasticNet(0.1, r)
    elif defect == "weights_value":
        wt = with_value(np.ones(p), j, draw(st.one_of(st.floats(max_value=-1e-300), bad_reals)))
        kw["penalty"] = draw(st.sampled_from([jr.L1, jr.L2, jr.ElasticNet]))(0.1, weights=wt)
    elif defect == "weights_size":
        kw["penalty"] = jr.L1(0.1, weights=np.ones(p + draw(st.sampled_from([-1, 1, 4]))))
    elif defect == "logistic_labels":
        labels = draw(st.sampled_from(["bad value", "one class"]))
        yl = rng.integers(0, 2, n).astype(float)
        yl[i] = draw(st.sampled_from([-1.0, 2.0, 0.5])) if labels == "bad value" else yl[i]
        kw.update(loss=jr.LogisticLoss(), y=yl if labels == "bad value" else np.full(n, float(i % 2)))
    elif defect == "poisson_counts":
        yc = rng.poisson(1.0, n).astype(float)
        yc[i] = -draw(st.floats(1e-9, 1e3))
        kw.update(loss=jr.PoissonLoss(), y=yc)
    elif defect == "tol":
        kw["tol"] = draw(
            st.one_of(st.floats(max_value=-1e-300), bad_reals, st.sampled_from(["x", None, [1e-4]]))
        )
    elif defect == "max_iter":
        kw["max_iter"] = draw(
            st.one_of(st.integers(max_value=0), st.floats(1, 100), st.sampled_from([True, "10"]))
        )
    return defect, kw


@settings(max_examples=25, derandomize=True, deadline=None, database=None)
@given(malformed())
def test_property_malformed_inputs_raise_value_or_type_error(case):
    defect, kw = case
    with pytest.raises((ValueError, TypeError), match=names(DEFECTS[defect])):
        jr.solve(**kw)


def test_weights_that_remove_a_class_or_all_counts_are_rejected():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3))
    yb = np.array([0, 0, 0, 0, 1, 1, 1, 1.0])
    sw = np.array([1, 1, 1, 1, 0, 0, 0, 0.0])
    with pytest.raises(ValueError, match="single class"):
        jr.solve(X, yb, jr.LogisticLoss(), jr.L1(0.1), sample_weight=sw)
    counts = np.array([0, 0, 0, 0, 3, 1, 2, 5.0])
    with pytest.raises(ValueError, match="all zero"):
        jr.solve(X, counts, jr.PoissonLoss(), jr.L2(0.1), sample_weight=sw)


@pytest.mark.parametrize("delta", [0.0, -1.0, np.inf])
def test_huber_delta_must_be_positive(delta):
    X = np.eye(4)
    with pytest.raises(ValueError, match="delta"):
        jr.solve(X, np.arange(4.0), jr.HuberLoss(delta=delta), jr.L1(0.1))


@pytest.mark.parametrize("on_host", [True, False])
def test_non_finite_values_of_a_jax_array_are_counted_where_it_lives(on_host, monkeypatch):
    """NumPy reads a JAX array in host memory without a copy; one on an accelerator is checked by a
    reduction on its device instead of a copy of the whole design to the host."""
    from jaxreg import _validation as V

    X = np.ones((6, 3))
    X[1, 2], X[4, 0] = np.nan, -np.inf
    on_device = []
    count = V._count_nonfinite
    monkeypatch.setattr(V, "_on_host", lambda a: on_host)
    monkeypatch.setattr(V, "_count_nonfinite", lambda a: on_device.append(a.shape) or count(a))
    with pytest.raises(ValueError, match=re.escape("X contains 2 NaN or infinite value(s)")):
        jr.solve(jnp.asarray(X), np.ones(6), penalty=jr.L1(0.1))
    assert on_device == ([] if on_host else [(6, 3)])
    X[1, 2], X[4, 0] = 0.0, 0.0
    assert bool(jr.solve(jnp.asarray(X), np.arange(6.0), penalty=jr.L1(0.1)).converged)
    assert on_device == ([] if on_host else [(6, 3)] * 2)
