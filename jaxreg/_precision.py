"""Full-precision matrix products for the solvers.

On GPUs and TPUs, JAX's default precision computes float32 matrix products in reduced precision
(TF32 or bfloat16 passes, about 3 significant digits).  A duality gap computed from such products
cannot certify a tolerance of 1e-4 relative to the data, so every compiled program of jaxreg is
traced with ``"highest"`` precision: float32 products in float32, float64 in float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax

F = TypeVar("F", bound=Callable[..., Any])


def full_precision(fn: F) -> F:
    """Trace ``fn`` under ``jax.default_matmul_precision("highest")`` (put it inside ``jax.jit``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
