"""Test configuration shared by tests/ and the doctests in jaxreg/: float64 references."""

import jax

jax.config.update("jax_enable_x64", True)
