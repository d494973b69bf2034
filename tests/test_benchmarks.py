"""The benchmark scripts run end to end on tiny problems (a GPU session gets one try at them).

Each script runs in a fresh process, as ``benchmarks/gpu.sh`` runs it; the checks are on what it
writes: every jaxreg row solved within the tolerance by NumPy's gap, and the profile's counts.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def script(name, *args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, os.path.join(BENCH, name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_run_writes_a_table_of_solved_paths(tmp_path):
    script("run.py", "--scale", "0.05", "--problems", "wide,logistic,cv", "--dtypes", "float64",
           "--peers", "", "--repeat", "1", "--out", str(tmp_path))  # fmt: skip
    table = (tmp_path / "results.md").read_text()
    rows = [r.split("|") for r in table.splitlines() if r.startswith("| ")]
    rows = [r for r in rows if r[4].strip().startswith("jaxreg")]  # the method column
    # wide, logistic, the CV and the CV's one-program variant on a CPU
    assert len(rows) == 4, table
    assert all(r[8].strip() == "yes" for r in rows), table  # the ok column
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.png").stat().st_size > 0


def test_profile_counts_batched_iterations_and_reads_its_trace():
    out = script("profile.py", "--scale", "0.05", "--problems", "wide", "--block-sizes", "auto,3",
                 "--min-seconds", "0.01", "--trace", "--sequence", "4")  # fmt: skip
    lines = re.findall(r"block_size=(\w+)\((\d+)\).*batched iterations (\d+).*iterations summed (\d+), "
                       r"unconverged (\d+)", out)  # fmt: skip
    assert len(lines) == 2, out
    assert [size for _, size, *_ in lines] == ["1", "3"]  # "auto" is one alpha per block on a CPU
    for _, size, batched, summed, unconverged in lines:
        # a block's batched iterations are its slowest lane's: one lane's own, or between the block's
        # sum over its lanes and that sum's mean
        if size == "1":
            assert batched == summed
        assert int(summed) / int(size) <= int(batched) <= int(summed)
        assert unconverged == "0"
    assert "busy" in out and "4 consecutive events" in out, out


def test_gpu_script_parses():
    assert subprocess.run(["bash", "-n", os.path.join(BENCH, "gpu.sh")], check=False).returncode == 0


def test_profile_counts_an_accelerator_path_on_the_cpu():
    """``--accelerator-loops``: the accelerators' defaults on this CPU (blocks of 20)."""
    out = script("profile.py", "--scale", "0.05", "--problems", "wide", "--min-seconds", "0.01",
                 "--accelerator-loops")  # fmt: skip
    assert "accelerator loops" in out and "block_size=auto(20)" in out, out
    assert re.search(r"unconverged 0\b", out), out


def test_kernels_reads_the_loops_of_optimized_hlo():
    """``kernels.py`` needs the CUDA plugin to compile for an H100; its reading of XLA's optimized HLO
    (innermost while loops, their kernels by kind) is the same for the CPU's."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, BENCH)
    import kernels

    def fn(X, w):
        def body(c):
            k, w = c
            return k + 1, jnp.maximum(w - 0.1 * (X.T @ (X @ w)), 0.0)

        return jax.lax.while_loop(lambda c: c[0] < 10, body, (0, w))[1]

    X = jnp.ones((64, 32))
    hlo = jax.jit(fn).lower(X, jnp.ones(32)).compile().as_text()
    found = kernels.loops(hlo)
    assert len(found) == 1, hlo
    _, body, cond = found[0]
    kinds = [kernels.kind(k) for k in body]
    assert kinds and cond >= 0 and all(isinstance(k, str) for k in kinds), kinds
    assert any(k["opcode"] in ("fusion", "dot", "custom-call") for k in body), body
