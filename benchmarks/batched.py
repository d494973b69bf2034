"""Batched iterations of jaxreg's solves, counted as the compiled programs run.

On an accelerator a path's time follows its batched iterations: for each batched solve (a block of
alphas, or a round of recycled lanes, ``jaxreg.path``), the most iterations of one of its lanes,
summed over the solves.  ``n_iter`` gives each alpha's own count only, so the solves report theirs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

import jaxreg  # noqa: F401  (loads jaxreg.solvers)

SV = sys.modules["jaxreg.solvers"]


@contextlib.contextmanager
def counting_solves() -> Iterator[list[int]]:
    """While open, each batched solve (``jaxreg.solvers.run``) that jaxreg traces appends the most
    iterations of one of its lanes to the list it yields, each time the program runs it.

    Only programs traced while it is open count (a call with a static argument of its own, such as
    ``max_iter``, traces a new one); call ``jax.effects_barrier()`` before reading the list.
    """
    run = SV.run
    counts: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        st = run(*args, **kwargs)
        jax.debug.callback(lambda m: counts.append(int(m)), jnp.max(st.n_iter))
        return st

    SV.run = spy
    try:
        yield counts
    finally:
        SV.run = run
