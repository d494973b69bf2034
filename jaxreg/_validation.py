"""Input validation shared by every entry point. Runs once, outside jitted code.

Values that are JAX tracers (``jr.solve`` called under ``jit``/``vmap``/``grad``) are checked for
shape only; their values are the caller's responsibility.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def concrete(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array, or ``None`` when it is a tracer."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def to_device(a: Any, dtype: Any = None) -> jax.Array:
    """A host value (NumPy array, Python or NumPy scalar) as a JAX array: one copy to the device.

    ``jnp.asarray`` of a host value runs a compiled identity program: one compilation, about 8 ms
    on a CPU, per new shape and dtype: ten of them in a first call of the benchmark CV.
    The dtype is JAX's (float32 for float64 without ``jax_enable_x64``), as ``jnp.asarray`` gives.
    A traced value (under ``jit``) is converted in the program.
    """
    if isinstance(a, jax.core.Tracer):
        return jnp.asarray(a, dtype)
    return jax.device_put(np.asarray(a, dtype))


def float_dtype(x: Any) -> Any:
    """The floating dtype results are computed in: the input's, or JAX's default float."""
    dt = np.dtype(getattr(x, "dtype", np.float64))
    if dt in (np.float32, np.float64) or dt == jnp.bfloat16 or dt == np.float16:
        dt = np.dtype(np.float32) if dt.itemsize < 4 else dt
    else:
        dt = np.dtype(np.float64)
    return jax.dtypes.canonicalize_dtype(dt)  # float64 becomes float32 when x64 is disabled


def host_reshape(a: Any, shape: tuple[int, ...]) -> jax.Array:
    """``a.reshape(shape)``: a concrete array is reshaped on the host and copied to the device (outside
    a program, a reshape compiles one), a traced one in the program."""
    host = concrete(a)
    return a.reshape(shape) if host is None else to_device(host.reshape(shape))


def _on_host(a: jax.Array) -> bool:
    """Whether the JAX array ``a`` lives in host memory (NumPy then reads it without a copy)."""
    return all(d.platform == "cpu" for d in a.devices())


@jax.jit
def _count_nonfinite(a: jax.Array) -> jax.Array:
    return jnp.sum(~jnp.isfinite(a))


def _check_finite(name: str, a: Any) -> None:
    if isinstance(a, jax.core.Tracer) or np.dtype(a.dtype).kind not in "fc":
        return
    if isinstance(a, jax.Array) and not _on_host(a):
        bad = int(_count_nonfinite(a))  # counted on the device: no copy of ``a`` to the host
    else:
        c = np.asarray(a)
        bad = 0 if np.all(np.isfinite(c)) else int(np.size(c) - np.count_nonzero(np.isfinite(c)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")


def _as_numeric(name: str, a: Any) -> Any:
    if isinstance(a, jax.Array):
        if np.dtype(a.dtype).kind == "c":
            raise ValueError(f"{name} must be real-valued, got complex dtype {a.dtype}")
        return a
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from None
    return arr


def check_X(X: Any) -> jax.Array:
    """``X`` as a 2-D finite floating array of shape ``(n_samples, n_features)``."""
    X = _as_numeric("X", X)
    if np.ndim(X) != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {np.shape(X)}")
    n, p = np.shape(X)
    if n == 0:
        raise ValueError("X has 0 samples")
    if p == 0:
        raise ValueError("X has 0 features")
    _check_finite("X", X)
    dtype = float_dtype(X)
    if isinstance(X, np.ndarray):  # one copy to the device (jnp.asarray took two: 3.0 ms, not 1.4, for 32 MB)
        return jax.device_put(np.asarray(X, dtype))
    return jnp.asarray(X, dtype)


def check_y(y: Any, n_samples: int, dtype: Any, name: str = "y") -> jax.Array:
    """``y`` as a finite 1-D array of length ``n_samples``."""
    y = _as_numeric(name, y)
    if np.ndim(y) == 2 and np.shape(y)[1] == 1:
        y = y[:, 0]
    if np.ndim(y) != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {np.shape(y)}")
    if np.shape(y)[0] != n_samples:
        raise ValueError(f"{name} has {np.shape(y)[0]} samples but X has {n_samples}")
    _check_finite(name, y)
    return to_device(y, dtype) if isinstance(y, np.ndarray) else jnp.asarray(y, dtype)


def check_sample_weight(sample_weight: Any, n_samples: int, dtype: Any) -> jax.Array:
    """Non-negative finite sample weights, not all zero, normalized to sum to one."""
    if sample_weight is None:
        return to_device(np.full((n_samples,), 1.0 / n_samples, dtype))
    sw = check_y(sample_weight, n_samples, dtype, name="sample_weight")
    c = concrete(sw)
    if c is not None:
        if np.any(c < 0):
            raise ValueError("sample_weight must be non-negative")
        if not np.any(c > 0):
            raise ValueError("sample_weight is all zero")
        return to_device(c / c.sum(dtype=c.dtype))
    return sw / jnp.sum(sw)


def check_tol_max_iter(tol: Any, max_iter: Any, dtype: Any = None) -> None:
    """Validate ``tol`` and ``max_iter``; warn when ``dtype`` cannot resolve a gap of ``tol``.

    The duality gap is a difference of two objective values, each rounded to ``eps`` of the problem's
    scale, so relative gaps below about ``10 * eps`` are noise: such a ``tol`` ends at ``max_iter`` with
    ``converged = False``.
    """
    t = concrete(tol)
    if t is not None:
        if t.dtype.kind not in "biuf":
            raise TypeError(f"tol must be a non-negative finite scalar, got {tol!r}")
        if np.ndim(t) != 0 or not np.isfinite(t) or t < 0:
            raise ValueError(f"tol must be a non-negative finite scalar, got {tol!r}")
        if dtype is not None and t < 10 * np.finfo(dtype).eps:
            warnings.warn(
                f"tol={float(t):.3g} is below what {np.dtype(dtype).name} resolves (about "
                f"{10 * np.finfo(dtype).eps:.1g}); fits will likely stop at max_iter unconverged",
                UserWarning,
                stacklevel=3,
            )
    check_positive_int("max_iter", max_iter)


def check_positive_int(name: str, value: Any) -> None:
    """Loop limits are static Python integers >= 1 (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
