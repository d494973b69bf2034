"""Kernels per iteration of a path's loops on an H100, counted on a machine without a GPU.

On a GPU one batched FISTA step of a path launches a few dozen small kernels of 1 to 8 us each, and
its time is about their count times their latency (``profile.py --trace``).  XLA:GPU can compile
for a GPU it does not have: the CUDA plugin's compile-only topology, described by a target
configuration (here an H100 SXM's), runs the whole pipeline (fusion, matrix-product rewriting,
scheduling, PTX and SASS) on the CPU.  This script compiles ``jr.path``'s program that way, with the
accelerators' loop structure, and lists every innermost while loop (the FISTA steps of each
working-set capacity, the power iterations, ...) with the kernels one iteration launches, by kind.

Without a device XLA cannot autotune: its matrix products are the defaults of its heuristics (Triton
kernels, split along the contracted axis, after padding), where a real H100 may pick cuBLAS and
launch fewer.  Fusion, reductions, copies and elementwise kernels are those of a real compile.

It needs the CUDA plugin of the installed jax, best in an environment of its own (the plugin is
not needed by anything else here, and on a machine without a GPU only its compiler works)::

    python -m venv /tmp/aot
    /tmp/aot/bin/pip install "jax==0.10.2" "jaxlib==0.10.2" "jax-cuda12-plugin==0.10.2" \\
        "jax-cuda12-pjrt==0.10.2" optax
    PYTHONPATH=. /tmp/aot/bin/python benchmarks/kernels.py --problems wide,square --kernels

``--path`` also estimates the kernels of one call of the path: each loop's kernels times its
iterations in a run of the same path on this CPU with the accelerators' loops, by part (the call's
own, the rounds', the working-set iterations', the FISTA solves' fixed work, their steps and their
checks; wide: about 6260; at 7915583 about 8650, and the H200's trace counted 8335 events).
``--fused`` compiles with ``jaxreg.solvers.FUSED`` (wide: about 3280).  ``--check-every`` sets
``jr.path``'s.
"""

from __future__ import annotations

import os

# Keep the default backend a CPU (no CUDA client, which needs a driver); the plugin still registers
# its compile-only topology.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import collections
import re
import sys
import time
from pathlib import Path
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import problems as P
import run as R

import jaxreg as jr
from jaxreg._precision import full_precision

PM = sys.modules["jaxreg.path"]

#: GpuTargetConfigProto of an H100 SXM (80 GB HBM3): what XLA:GPU reads from a device it has.
H100 = """
gpu_device_info {
  threads_per_block_limit: 1024 threads_per_warp: 32 shared_memory_per_block: 49152
  shared_memory_per_core: 233472 threads_per_core_limit: 2048 core_count: 132 fpus_per_core: 128
  block_dim_limit_x: 2147483647 block_dim_limit_y: 65535 block_dim_limit_z: 65535
  memory_bandwidth: 3352320000000 l2_cache_size: 52428800 clock_rate_ghz: 1.98
  device_memory_size: 84929347584 shared_memory_per_block_optin: 232448
  cuda_compute_capability { major: 9 } registers_per_core_limit: 65536 registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info { major: 9 minor: 8 }
runtime_version { major: 12 minor: 8 }
device_description_str: "NVIDIA H100 80GB HBM3"
"""

_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\S+(?:\s\S+)*?)\s+([\w\-]+)\((.*)$")
_NO_KERNEL = {"parameter", "get-tuple-element", "tuple", "bitcast", "constant", "after-all", "opt-barrier"}
_CONTROL = {"while", "conditional", "call", "async-start", "async-done"}


def h100() -> Any:
    from jax.experimental import topologies

    return topologies.get_topology_desc(platform="cuda", topology="1x1x1", target_config=H100).devices[0]


def computations(hlo: str) -> dict[str, list[dict[str, str]]]:
    """``{computation: [{name, shape, opcode, rest}]}`` of optimized HLO text."""
    comps: dict[str, list[dict[str, str]]] = {}
    current = None
    for line in hlo.splitlines():
        m = _COMPUTATION.match(line)
        if m and not line.startswith(" "):
            current = comps.setdefault(m.group(1), [])
            continue
        if line.startswith("}"):
            current = None
        elif current is not None and (mi := _INSTRUCTION.match(line)):
            current.append(
                {"name": mi.group(1), "shape": mi.group(2), "opcode": mi.group(3), "rest": mi.group(4)}
            )
    return comps


def kind(ins: dict[str, str]) -> str:
    """What a kernel-launching instruction is: product, reduction, elementwise, copy or other."""
    rest = ins["rest"]
    target = re.search(r'custom_call_target="([^"]+)"', rest)
    if (
        ins["opcode"] == "custom-call"
        and target
        and ("cublas" in target.group(1) or "gemm" in target.group(1))
    ):
        return "product"
    if ins["opcode"] == "fusion":
        backend = re.search(r'"fusion_backend_config":\{"kind":"([^"]+)"', rest)
        if "kind=kCustom" in rest and backend and "gemm" in backend.group(1):
            return "product"
        if "kind=kInput" in rest:
            return "reduction"
        if "kind=kLoop" in rest:
            return "elementwise"
    if ins["opcode"] == "copy":
        return "copy"
    return ins["opcode"]


def loops(hlo: str) -> list[tuple[str, list[dict[str, str]], int]]:
    """Innermost while loops: name, the kernels of one iteration of the body, and of the condition."""
    comps = computations(hlo)
    out = []
    for instrs in comps.values():
        for ins in instrs:
            if ins["opcode"] != "while":
                continue
            body = re.search(r"body=%?([\w.\-]+)", ins["rest"]).group(1)
            cond = re.search(r"condition=%?([\w.\-]+)", ins["rest"]).group(1)
            if any(i["opcode"] in _CONTROL for i in comps[body]):
                continue
            launch = lambda c: [i for i in comps[c] if i["opcode"] not in _NO_KERNEL | _CONTROL]
            out.append((ins["name"], launch(body), len(launch(cond))))
    return out


def path_program(prob: P.Problem, dtype: Any, check_every: int = 10) -> tuple[Any, tuple, dict]:
    """The function, arguments and static arguments of ``jr.path``'s program for ``prob``."""
    captured = {}
    program = PM._path_program

    def spy(*args: Any, **kwargs: Any) -> Any:
        captured["args"] = args
        return program(*args, **kwargs)

    loss = jr.LogisticLoss() if prob.kind == "logistic" else jr.SquaredLoss()
    n_alphas = R.N_CS if prob.kind == "logistic" else R.N_ALPHAS
    PM._path_program = spy
    jr._fused.INTERPRET = True  # the capture runs on this CPU
    try:  # on the CPU, with the accelerators' loops: one iteration is enough to capture the call
        jr.path(
            prob.X.astype(dtype),
            prob.y.astype(dtype),
            loss,
            alphas=n_alphas,
            eps=R.EPS,
            tol=R.TOL,
            max_iter=1,
            check_every=check_every,
        )
    finally:
        PM._path_program = program
        jr._fused.INTERPRET = False  # the program is compiled for the GPU
    X, y, s, loss_, unit, alphas, tol, cfg, n_dev, xtx, rho, fit = captured["args"]
    cfg = cfg._replace(solver=cfg.solver._replace(max_iter=10_000))

    def fn(X, y, s, loss_, unit, alphas, tol, xtx, rho, *, cfg, n_devices, fit_intercept):
        return full_precision(program._fn)(
            X, y, s, loss_, unit, alphas, tol, cfg, n_devices, xtx, rho, fit_intercept
        )

    return (
        fn,
        (X, y, s, loss_, unit, alphas, tol, xtx, rho),
        {"cfg": cfg, "n_devices": n_dev, "fit_intercept": fit},
    )


def tree(hlo: str) -> list[str]:
    """The program's control flow as indented lines: each while loop (its kernels an iteration,
    outside the loops and branches nested in it, and its condition's) and each conditional's
    branches, with the kernels each launches directly.  Straight-line kernels of the entry
    computation come first: the fixed work of a call."""
    comps = computations(hlo)
    entry = next(m.group(1) for line in hlo.splitlines() if (m := re.match(r"^ENTRY\s+%?([\w.\-]+)", line)))
    direct = lambda c: [i for i in comps[c] if i["opcode"] not in _NO_KERNEL | _CONTROL]
    out: list[str] = []

    def walk(comp: str, depth: int) -> None:
        for ins in comps[comp]:
            pad = "  " * (depth + 1)
            if ins["opcode"] == "while":
                body = re.search(r"body=%?([\w.\-]+)", ins["rest"]).group(1)
                cond = re.search(r"condition=%?([\w.\-]+)", ins["rest"]).group(1)
                trip = re.search(r'"known_trip_count":\{"n":"(\d+)"', ins["rest"])
                known = f", {trip.group(1)} iterations known" if trip else ""
                out.append(f"{pad}{ins['name']}: {len(direct(body))} kernels an iteration, "
                           f"+{len(direct(cond))} for its condition{known}")
                walk(body, depth + 1)
                walk(cond, depth + 1)
            elif ins["opcode"] in ("conditional", "call"):
                names = re.findall(r"(?:branch_computations=\{|true_computation=|false_computation=|to_apply=)"
                                   r"%?([\w.\-]+(?:,\s*%?[\w.\-]+)*)", ins["rest"])
                branches = [b.strip().lstrip("%") for n in names for b in n.split(",")]
                for k, b in enumerate(branches):
                    if b in comps:
                        out.append(f"{pad}{ins['name']} [{ins['opcode']} {k}]: {len(direct(b))} kernels")
                        walk(b, depth + 1)

    out.append(f"  entry: {len(direct(entry))} kernels")
    walk(entry, 0)
    return out


def _node(comps: dict, comp: str) -> list[dict]:
    """The loops and conditionals directly in ``comp``, each with its own nested ones."""
    direct = lambda c: len([i for i in comps[c] if i["opcode"] not in _NO_KERNEL | _CONTROL])  # noqa: E731
    out = []
    for ins in comps[comp]:
        if ins["opcode"] == "while":
            body = re.search(r"body=%?([\w.\-]+)", ins["rest"]).group(1)
            cond = re.search(r"condition=%?([\w.\-]+)", ins["rest"]).group(1)
            trip = re.search(r'"known_trip_count":\{"n":"(\d+)"', ins["rest"])
            trip = int(trip.group(1)) if trip else None
            out.append({"body": direct(body), "cond": direct(cond), "trip": trip, "inner": _node(comps, body)})
        elif ins["opcode"] == "conditional":
            names = re.findall(r"branch_computations=\{([^}]*)\}", ins["rest"])
            branches = [b.strip().lstrip("%") for n in names for b in n.split(",")]
            out.append({"branches": [{"direct": direct(b), "inner": _node(comps, b)} for b in branches]})
    return out


def _known(nodes: list[dict]) -> int:
    """Kernels of the loops of known trip count among ``nodes`` (and nested in them), per pass."""
    return sum(n["trip"] * (n["body"] + n["cond"] + _known(n["inner"])) + n["cond"]
               for n in nodes if "trip" in n and n["trip"] is not None)  # fmt: skip


def path_kernels(
    hlo: str, calls: list[tuple[int, int]], rounds: int, caps: tuple[int, ...], check_every: int
) -> dict[str, int]:
    """Kernels one call of the path program launches, estimated from its compiled loops and the
    iterations of a run of the same path: ``calls``, each FISTA solve's working set and most
    iterations of a lane; ``rounds``, its batched solves (rounds of recycled lanes, or blocks).

    The program's loops: the rounds (or blocks) hold the working-set loop, which holds a
    conditional with a branch per working-set size (``caps``, then all features); a branch holds
    the power iterations and the loop of checks, each check after a loop of known length over the
    steps.  A loop's condition counts once per iteration and once more at its end.  By part: the
    call's own, the rounds', the working-set iterations', the FISTA solves' fixed work (the power
    iterations, the setup), their steps, and their checks.
    """
    comps = computations(hlo)
    entry = next(m.group(1) for line in hlo.splitlines() if (m := re.match(r"^ENTRY\s+%?([\w.\-]+)", line)))
    direct = len([i for i in comps[entry] if i["opcode"] not in _NO_KERNEL | _CONTROL])

    def find(nodes: list[dict], path: list[dict]) -> list[dict] | None:  # the loops down to the switch
        for n in nodes:
            if "branches" in n:
                return path
            if "inner" in n and (got := find(n["inner"], [*path, n])) is not None:
                return got
        return None

    loops = find(_node(comps, entry), [])
    rounds_loop, ws_loop = loops[-2], loops[-1]
    switch = next(n for n in ws_loop["inner"] if "branches" in n)
    parts = dict.fromkeys(("call", "rounds", "working sets", "solves", "steps", "checks"), 0)
    parts["call"] = direct + _known(_node(comps, entry))  # blocks: a loop of known length
    if rounds_loop["trip"] is None:  # rounds of recycled lanes
        parts["rounds"] = rounds * (rounds_loop["body"] + rounds_loop["cond"] + _known(rounds_loop["inner"]))
        parts["rounds"] += rounds_loop["cond"]
    parts["rounds"] += ws_loop["cond"] * rounds
    for k, iters in calls:
        parts["working sets"] += ws_loop["body"] + ws_loop["cond"] + _known(ws_loop["inner"])
        # the working sets' branches, then all features (padded on accelerators)
        index = caps.index(k) if k in caps else len(caps)
        branch = switch["branches"][min(index, len(switch["branches"]) - 1)]
        checks = next(n for n in branch["inner"] if n.get("trip") is None)
        parts["solves"] += branch["direct"] + _known(branch["inner"]) + checks["cond"]
        n_checks = -(-iters // check_every)
        parts["steps"] += n_checks * _known(checks["inner"])
        parts["checks"] += n_checks * (checks["body"] + checks["cond"])
    return parts


def _path_calls(prob: P.Problem, dtype: Any, check_every: int = 10) -> tuple[list[tuple[int, int]], int]:
    """``jr.path``'s FISTA solves (working set, most iterations of a lane) and batched solves on
    ``prob``, with the accelerators' loops on this CPU (the fused kernels in the interpreter)."""
    calls: list[tuple[int, int]] = []
    solves: list[int] = []
    fista, run = jr.solvers.fista, jr.solvers.run

    def fista_spy(model: Any, penalty: Any, W0: Any, *args: Any, **kwargs: Any) -> Any:
        st = fista(model, penalty, W0, *args, **kwargs)
        jax.debug.callback(lambda m, k=W0.shape[0]: calls.append((k, int(m))), st.n_iter.max())
        return st

    def run_spy(*args: Any, **kwargs: Any) -> Any:
        st = run(*args, **kwargs)
        jax.debug.callback(lambda m: solves.append(int(m)), st.n_iter.max())
        return st

    loss = jr.LogisticLoss() if prob.kind == "logistic" else jr.SquaredLoss()
    n_alphas = R.N_CS if prob.kind == "logistic" else R.N_ALPHAS
    jr.solvers.fista, jr.solvers.run = fista_spy, run_spy
    jr._fused.INTERPRET = True
    try:
        jr.path(prob.X.astype(dtype), prob.y.astype(dtype), loss, alphas=n_alphas, eps=R.EPS, tol=R.TOL,
                max_iter=10_001, check_every=check_every)  # a program of its own, traced with the spies
        jax.effects_barrier()
    finally:
        jr.solvers.fista, jr.solvers.run = fista, run
        jr._fused.INTERPRET = False
    return calls, len(solves)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="wide")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--kernels", action="store_true", help="list each loop's kernels")
    ap.add_argument("--tree", action="store_true",
                    help="the whole program's loops and branches, each with the kernels it launches directly")
    ap.add_argument("--cublas", action="store_true", help="matrix products by cuBLAS instead of Triton")
    ap.add_argument("--fused", action="store_true", help="FISTA's steps by jaxreg._fused's kernels")
    ap.add_argument("--path", action="store_true",
                    help="also estimate the kernels of one path: its loops' counts times the iterations of "
                         "a run of the path on this CPU (slow with --fused: the kernels in the interpreter)")
    ap.add_argument("--check-every", type=int, default=10, help="steps between two checks (jr.path's)")
    args = ap.parse_args(argv)
    jr.solvers.FUSED = args.fused
    jax.default_backend = lambda: "gpu"  # jaxreg reads it at each call to choose its loops
    from jax.sharding import SingleDeviceSharding

    device = h100()
    options = {"xla_gpu_enable_triton_gemm": False} if args.cublas else None
    dtype = np.dtype(args.dtype).type
    print(
        f"# jax {jax.__version__}, compiled for {device.device_kind} without a device, {args.dtype}, "
        f"jaxreg from {Path(jr.__file__).parent}" + (", cuBLAS products" if args.cublas else "")
    )
    for name in args.problems.split(","):
        prob = P.make(name)
        fn, operands, static = path_program(prob, dtype, args.check_every)
        spec = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=SingleDeviceSharding(device))
        t0 = time.perf_counter()
        jitted = jax.jit(fn, static_argnames=tuple(static))
        hlo = (
            jitted.trace(*jax.tree_util.tree_map(spec, operands), **static).lower().compile(options).as_text()
        )
        cfg = static["cfg"]
        n_alphas = operands[5].shape[-1]  # (paths, alphas)
        gram = jr.solvers.uses_gram(jr.SquaredLoss(), "closed", *prob.X.shape) and prob.kind == "lasso"
        recycled = PM._recycles(cfg, gram, n_alphas)
        lanes = f"{cfg.block_size} lanes " + ("recycled" if recycled else "in blocks")
        print(
            f"{name} {prob.X.shape[0]}x{prob.X.shape[1]}, {cfg.solver.capacities} features a working set, "
            f"{lanes}: compiled in {time.perf_counter() - t0:.1f} s"
        )
        if args.path:
            calls, rounds = _path_calls(prob, dtype, args.check_every)
            parts = path_kernels(hlo, calls, rounds, cfg.solver.capacities, cfg.solver.check_every)
            print(f"  one path: about {sum(parts.values())} kernels ({rounds} batched solves, {len(calls)} "
                  f"FISTA solves of {sum(m for _, m in calls)} iterations): "
                  + ", ".join(f"{k} {v}" for k, v in parts.items()))
        if args.tree:
            print("\n".join(tree(hlo)))
            continue
        for loop, kernels, cond in loops(hlo):
            counts = collections.Counter(kind(k) for k in kernels)
            products = [k["shape"] for k in kernels if kind(k) == "product"]
            print(
                f"  {loop}: {len(kernels)} kernels an iteration (+{cond} for its condition): "
                + ", ".join(f"{c} {k}" for k, c in counts.most_common())
                + (f"; products {products}" if products else "")
            )
            if args.kernels:
                for k in kernels:
                    print(f"      {k['name']}: {kind(k)} {k['shape']}")


if __name__ == "__main__":
    main()
