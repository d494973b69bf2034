"""Where a path's time goes on the device: batched iterations, kernels, and busy time against wall time.

For each problem and each setting (``block_size`` x ``check_every``):

- the first call and the steady time of ``jr.path`` (as ``run.py`` times them: the best of runs
  totalling at least ``--min-seconds``);
- the batched iterations: the most iterations of one lane per batched solve (a block of
  ``block_size`` alphas, or a round of recycled lanes, ``jaxreg.path._recycled``), summed over the
  solves: the count that sets the time where a batched iteration costs about what one lane's does,
  as on a GPU.  Each solve reports its count to the host (``batched.counting_solves``): the timed
  calls include those callbacks, one per block or round (5 to 10 a path);
- the steady time per batched iteration, and the lanes that did not converge by the solver's own
  certificate (``run.py`` checks the gaps in NumPy).

With ``--trace``, the first setting of each problem is also run once under ``jax.profiler`` and its
trace summarised from the device's planes: kernels launched, the time the device was busy (the union
of its kernels' intervals) against the wall time of the call, kernels per batched iteration, and the
kernels that took the most time.  A device busy for a small part of the wall time is bound by kernel
launches and the host's loop control, not by memory or arithmetic.

    python benchmarks/profile.py --problems wide,square --block-sizes auto,30,40 --check-every 10,20 --trace

On a CPU the "device" is XLA:CPU's threads, and the summary still runs, but the split means little.
``--accelerator-loops`` gives jaxreg on a CPU the loop structure and defaults it takes on
accelerators (it reports the backend as ``gpu``: one check before each loop, none conditional, no
mixed precision, blocks of 20), so that the batched iterations of a GPU's path can be counted
without one; its times then mean nothing.

    python benchmarks/profile.py --problems wide,square,logistic --accelerator-loops --min-seconds 0
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import problems as P
import run as R
from batched import counting_solves

import jaxreg as jr

PM = sys.modules["jaxreg.path"]
SV = sys.modules["jaxreg.solvers"]


def summarise_trace(logdir: str, wall: float, batched: int, top: int, sequence: int = 0) -> str:
    """The device planes of one trace: per line, events and busy time; the busiest kernels.

    ``sequence``: also list that many consecutive events from the middle of the busiest line, with
    the idle time before each (a few batched iterations, kernel by kernel, in launch order).
    """
    files = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
    if not files:
        return "no trace written"
    data = jax.profiler.ProfileData.from_file(files[0])
    planes = [pl for pl in data.planes if pl.name.startswith("/device:")]
    if not planes:  # XLA:CPU: its thread pool's lines on the host plane
        planes = [pl for pl in data.planes if pl.name == "/host:CPU"]
    out, busiest = [], []
    for plane in planes:
        for line in plane.lines:
            events = [(e.start_ns, e.duration_ns, e.name) for e in line.events]
            if not events:
                continue
            events.sort()
            busiest = max(busiest, events, key=len)
            busy, end = 0.0, -np.inf
            for start, dur, _ in events:  # the union of the intervals
                busy += max(0.0, start + dur - max(start, end))
                end = max(end, start + dur)
            out.append(f"- {plane.name} / {line.name}: {len(events)} events, busy {busy / 1e6:.2f} ms "
                       f"({busy / 1e9 / wall:.0%} of the wall time {wall * 1e3:.2f} ms), "
                       f"{len(events) / max(batched, 1):.1f} events and "
                       f"{busy / 1e3 / max(batched, 1):.1f} us "
                       f"busy per batched iteration")
            if "stream" in line.name.lower() or line.name in ("XLA Ops", "Kernels"):
                by = collections.defaultdict(lambda: [0, 0.0])
                for _, dur, name in events:
                    by[name][0] += 1
                    by[name][1] += dur
                for name, (count, total) in sorted(by.items(), key=lambda kv: -kv[1][1])[:top]:
                    out.append(f"    {total / 1e6:8.3f} ms {count:7d} x {total / count / 1e3:8.2f} us  "
                               f"{name[:90]}")
    if sequence and busiest:
        mid = max(0, len(busiest) // 2 - sequence // 2)
        out.append(f"{sequence} consecutive events of the busiest line (idle before, duration, name):")
        for (s0, d0, _), (s1, d1, name) in zip(busiest[mid:], busiest[mid + 1:mid + 1 + sequence]):
            out.append(f"    {(s1 - s0 - d0) / 1e3:7.2f} us {d1 / 1e3:7.2f} us  {name[:100]}")
    return "\n".join(out) or "no device events"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="wide")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--block-sizes", default="auto")
    ap.add_argument("--check-every", default="10")
    ap.add_argument("--min-seconds", type=float, default=R.MIN_STEADY_SECONDS,
                    help="steady runs add up to this")
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--sequence", type=int, default=0,
                    help="with --trace: list this many consecutive kernels")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--accelerator-loops", action="store_true",
                    help="on a CPU, solve as on accelerators (counts only; times mean nothing)")
    ap.add_argument("--fused-tiles", default="",
                    help="with --fused on: TK,TN_LOOP,TN,TK_LOOP[,TB] of jaxreg._fused (powers of two)")
    ap.add_argument("--fused", choices=("on", "off"), default="off",
                    help="on: FISTA's steps by jaxreg._fused's Pallas kernels where they apply")
    args = ap.parse_args(argv)
    if args.accelerator_loops:
        jax.default_backend = lambda: "gpu"  # jaxreg reads it at each call to choose its loops
        jr._fused.INTERPRET = jax.devices()[0].platform == "cpu"  # the kernels in Pallas' interpreter
    R.use_fused(args.fused == "on", args.fused_tiles)
    R.MIN_STEADY_SECONDS = args.min_seconds
    dtype = np.dtype(args.dtype).type
    print(f"# jax {jax.__version__}, {jax.devices()[0].device_kind}, {args.dtype}, tol {R.TOL}, "
          f"jaxreg from {Path(jr.__file__).parent}"
          + (", accelerator loops" if args.accelerator_loops else "")
          + (f", fused steps (tiles {jr._fused.TK},{jr._fused.TN_LOOP},{jr._fused.TN},{jr._fused.TK_LOOP},"
             f"{jr._fused.TB})"
             if jr.solvers.FUSED else ""))
    for name in args.problems.split(","):
        prob = P.make(name, args.scale)
        X, y = prob.X.astype(dtype), prob.y.astype(dtype)
        loss = jr.LogisticLoss() if prob.kind == "logistic" else jr.SquaredLoss()
        n_alphas = R.N_CS if prob.kind == "logistic" else R.N_ALPHAS
        alphas = np.asarray(jr.path(prob.X, prob.y, loss, alphas=n_alphas, eps=R.EPS, max_iter=1).alphas)
        traced = not args.trace
        for bs in args.block_sizes.split(","):
            block = bs if bs == "auto" else int(bs)
            for ce in map(int, args.check_every.split(",")):
                fit = functools.partial(jr.path, X, y, loss, alphas=alphas.astype(dtype), tol=R.TOL,
                                        block_size=block, check_every=ce)
                with counting_solves() as counts:  # traced in at the first call: no compilation more

                    def counted(fit=fit, counts=counts):
                        counts.clear()  # each call reports its solves: the last call's remain
                        return fit()

                    first, best, res = R.timed(counted, 1)
                    jax.effects_barrier()
                batched = sum(counts)
                n_iter = np.asarray(res.n_iter)
                gram = SV.uses_gram(loss, "grad" if prob.kind == "logistic" else "closed", *X.shape)
                size = PM._auto_block_size(gram) if block == "auto" else block
                print(f"{name} {prob.X.shape[0]}x{prob.X.shape[1]} block_size={bs}({size}) check_every={ce}: "
                      f"first {first:.2f} s, steady {best * 1e3:.2f} ms, batched iterations {batched}, "
                      f"{best / max(batched, 1) * 1e6:.1f} us each, iterations summed {int(n_iter.sum())}, "
                      f"unconverged {int((~np.asarray(res.converged)).sum())}", flush=True)
                if not traced:
                    traced = True
                    try:
                        with tempfile.TemporaryDirectory() as logdir:
                            with jax.profiler.trace(logdir):
                                t0 = time.perf_counter()
                                jax.block_until_ready(fit())
                                wall = time.perf_counter() - t0
                            print(summarise_trace(logdir, wall, batched, args.top, args.sequence), flush=True)
                    except Exception as err:  # noqa: BLE001 (without a profiler, the timings remain)
                        print(f"trace failed: {err!r}", flush=True)


if __name__ == "__main__":
    main()
