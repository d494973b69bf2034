"""How jaxreg compiles its programs: full-precision matrix products and XLA:CPU's options.

On GPUs and TPUs, JAX's default precision computes float32 matrix products in reduced precision
(TF32 or bfloat16 passes, about 3 significant digits).  A duality gap computed from such products
cannot certify a tolerance of 1e-4 relative to the data, so every compiled program of jaxreg is
traced with ``"highest"`` precision: float32 products in float32, float64 in float64.

:func:`compiled` jits a function that way and compiles it with :data:`COMPILER_OPTIONS` (and, where
the default backend is the CPU, :data:`CPU_COMPILER_OPTIONS`).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

#: Options for XLA, passed to every program of jaxreg; options for one backend are ignored by the
#: others.  XLA:CPU's older loop-fusion emitters compile the solvers' programs in 35% to 45% less
#: time than its newer fusion emitters, and the programs run as fast (the first call of the
#: benchmark paths fell by 1.1 to 2.2 s).  On GPUs, XLA's defaults stay: running the while loops as
#: CUDA graphs (command buffers of kind WHILE) did not pay on an H100, nor on an H200 (the wide path
#: 0.035 s against 0.033 s, the 5-fold CV 0.066 s against 0.065 s).  Both in benchmarks/README.md.
COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}

#: Further options where the default backend is the CPU.  With LLVM at optimization level 1 instead
#: of 3, the first calls of the benchmark paths took 0.3 to 0.6 s less (7% to 14%) and their steady
#: times stayed within 4%, but for L1-logistic's, 20% shorter (benchmarks/README.md).  Level 0 had
#: made the programs 2.3x slower.
#:
#: XLA:CPU's pass ``tree_reduction_rewriter`` splits every sum, max and min over more than 32 entries
#: into two or three reductions (windows of 32, then their results), each a kernel of its own that
#: its operand no longer fuses into: 159 of the 391 kernels of the L1-logistic path.  Without it the
#: path programs compile in 0.2 to 0.8 s less; L1-logistic's path ran 10% faster, the wide one up to
#: 6% slower, the others within the noise of the machine (benchmarks/README.md).  The sums then
#: accumulate in order; every duality gap that decides convergence is computed in float64.
CPU_COMPILER_OPTIONS: dict[str, Any] = {
    "xla_backend_optimization_level": 1,
    "xla_disable_hlo_passes": "tree_reduction_rewriter",
}


def full_precision(fn: F) -> F:
    """Trace ``fn`` under ``jax.default_matmul_precision("highest")`` (put it inside ``jax.jit``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _options() -> tuple[tuple[str, Any], ...]:
    """The options (:data:`COMPILER_OPTIONS`, and on a CPU :data:`CPU_COMPILER_OPTIONS`) that the
    installed XLA accepts for the default backend (:func:`_options_for`)."""
    return _options_for(jax.default_backend())


@functools.cache
def _options_for(backend: str) -> tuple[tuple[str, Any], ...]:
    """:func:`_options` of ``backend``: probed together once, and each on its own where they are not
    all accepted (cached per backend: a program built while the backend reads otherwise, as in tests
    of the accelerators' loops, does not decide the CPU's)."""
    options = dict(COMPILER_OPTIONS)
    if backend == "cpu":
        options.update(CPU_COMPILER_OPTIONS)
    # passes a user disabled in XLA_FLAGS stay disabled (an option replaces the flag's whole list)
    user = re.findall(r"--xla_disable_hlo_passes=(\S+)", os.environ.get("XLA_FLAGS", ""))
    if user and "xla_disable_hlo_passes" in options:
        options["xla_disable_hlo_passes"] = ",".join([options["xla_disable_hlo_passes"], *user])

    def accepts(opts: dict[str, Any]) -> bool:
        try:
            jax.jit(lambda x: x + 1, compiler_options=opts).lower(np.float32(0)).compile()
        # an XLA without this option (or this value) rejects it: compile with its default
        except (jax.errors.JaxRuntimeError, ValueError, TypeError):
            return False
        return True

    if accepts(options):  # one probe when all are accepted, else one per option
        return tuple(options.items())
    return tuple((key, value) for key, value in options.items() if accepts({key: value}))


_BUILD_LOCK = threading.Lock()


class _Compiled:
    """``jax.jit(full_precision(fn))`` with :data:`COMPILER_OPTIONS` where JAX takes them.

    JAX takes compiler options only for a top-level call: a call traced inside another ``jit``
    (a user's, or one of jaxreg's) runs the same function jitted without them, and is compiled
    with its caller.  Both are built at the first call, so that importing jaxreg starts no backend.
    """

    def __init__(self, fn: Callable[..., Any], static_argnames: tuple[str, ...]):
        self._fn, self._static = fn, static_argnames
        self._top: Any = None
        self._nested: Any = None
        functools.update_wrapper(self, fn)

    def _build(self) -> None:
        if self._top is not None:  # set last: a thread that sees it sees both
            return
        with _BUILD_LOCK:  # threads calling a program at once (jaxreg.path.threaded_paths) build it once
            if self._top is None:
                fn = full_precision(self._fn)
                nested = jax.jit(fn, static_argnames=self._static)
                opts = dict(_options())
                self._nested = nested
                self._top = jax.jit(fn, static_argnames=self._static, compiler_options=opts) if opts else nested

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._build()
        if self._top is self._nested or _traced(args, kwargs):
            return self._nested(*args, **kwargs)
        try:
            return self._top(*args, **kwargs)
        except ValueError as e:  # traced after all (by a jit whose arguments all were constants)
            if "compiler_options" not in str(e):
                raise
            return self._nested(*args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        self._build()
        return self._top.lower(*args, **kwargs)

    def _cache_size(self) -> int:
        if self._nested is None:
            return 0
        return self._nested._cache_size() + (self._top._cache_size() if self._top is not self._nested else 0)


def _traced(args: tuple, kwargs: dict) -> bool:
    leaves = jax.tree_util.tree_leaves((args, kwargs))
    return any(isinstance(a, jax.core.Tracer) for a in leaves)


def compiled(static_argnames: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorator: jit with full precision and :data:`COMPILER_OPTIONS` (``static_argnames`` as ``jax.jit``)."""

    def wrap(fn: F) -> F:
        return _Compiled(fn, tuple(static_argnames))  # type: ignore[return-value]

    return wrap
