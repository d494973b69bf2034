"""Paths and CV sharded over 4 CPU devices equal the single-device results."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import jaxreg as jr

    assert jax.device_count() == 4, jax.devices()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 30))
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + rng.standard_normal(50)

    kw = dict(penalty=jr.ElasticNet(), l1_ratios=[0.3, 0.6, 1.0], alphas=8, tol=1e-10)
    one = jr.path(X, y, devices=1, **kw)
    four = jr.path(X, y, devices=4, **kw)
    np.testing.assert_allclose(four.coef, one.coef, atol=1e-8)
    np.testing.assert_allclose(four.intercept, one.intercept, atol=1e-8)

    one = jr.cross_validate(X, y, alphas=8, cv=5, tol=1e-10, devices=1)
    four = jr.cross_validate(X, y, alphas=8, cv=5, tol=1e-10, devices=4)
    np.testing.assert_allclose(four.scores, one.scores, rtol=1e-8)
    assert four.alpha_min == one.alpha_min and four.alpha_1se == one.alpha_1se
    np.testing.assert_allclose(four.coef, one.coef, atol=1e-8)

    rows = jr.path(X, y, alphas=8, tol=1e-10, shard="rows")
    base = jr.path(X, y, alphas=8, tol=1e-10, devices=1)
    np.testing.assert_allclose(rows.coef, base.coef, atol=1e-8)
    print("SHARDING-OK")
    """
)


def test_four_devices_equal_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "SHARDING-OK" in out.stdout
