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
_OPEN: list[list[int]] = []  # the lists of the open counting_solves, innermost last


def _report(m: Any) -> None:
    if _OPEN:
        _OPEN[-1].append(int(m))


@contextlib.contextmanager
def counting_solves() -> Iterator[list[int]]:
    """While open, each batched solve (``jaxreg.solvers.run``) that jaxreg traces reports the most
    iterations of one of its lanes, each time the program runs it, to the list it yields.

    A program traced while one was open reports to whichever is open when it runs (to none: its
    reports are dropped); a program traced before none was open reports nothing, so a count needs a
    program of its own (a static argument of its own, such as ``max_iter``, traces a new one).  Call
    ``jax.effects_barrier()`` before reading the list.
    """
    run = SV.run
    counts: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        st = run(*args, **kwargs)
        jax.debug.callback(_report, jnp.max(st.n_iter))
        return st

    SV.run = spy
    _OPEN.append(counts)
    try:
        yield counts
    finally:
        SV.run = run
        _OPEN.pop()
