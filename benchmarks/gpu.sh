#!/usr/bin/env bash
# The GPU benchmark, run as one script on a machine with an NVIDIA GPU and JAX with CUDA installed:
#   bash benchmarks/gpu.sh OUT_DIR [PART]
# Optional wheels for the CPU peers (celer) are installed from .whl/ when present.  PART "main" (the
# default) writes iteration.md (iteration time against the hardware bound) and results.{md,csv,png}
# (the path and CV benchmarks, with the peers on this machine's CPU) to OUT_DIR.  PART "graphs"
# writes the iteration time, and the paths of jaxreg alone (graphs-on/, graphs-off/), with the
# while loops run as CUDA graphs and with XLA's default command buffers; PART "unroll" writes the
# iteration time with and without the steps between two checks unrolled to OUT_DIR/unroll; PART
# "autotune" writes the paths of jaxreg alone, float32 and float64 (autotune-default/, autotune-0/,
# triton-off/), with XLA's GPU autotuning at its default, at level 0, and without Triton matrix
# products (the float32 first calls of the H100 run at c81096d took 2 to 3 times those of float64);
# PART "profile" writes profile.txt: profile.py's batched iterations and time per iteration for block
# sizes and check intervals, and the device's busy time and kernels from a trace of the default.
# PART "variants" writes variants.txt: profile.py once per copy of the package in VARIANTS (default
# .variants/*/, each holding a jaxreg/, e.g. `git archive REF jaxreg | tar -x -C .variants/REF`;
# carry .variants), one process each, in that order, in DTYPE (default float64).
# PART "fused" writes fused.txt: the paths of jaxreg alone with FISTA's steps by jaxreg._fused's
# Pallas kernels and by XLA's (run.py --fused on/off, alternating twice, DTYPES default float64; then
# each of FUSED_TILES, "TK,TN_LOOP,TN,TK_LOOP[,TB]" separated by spaces, default 32,32,32,64,16:
# lanes in blocks of 16, twice the programs of the default tiles), fused-iteration.md (one
# iteration of 20 lanes on all features, either way), and fused-profile.txt: profile.py's batched
# iterations (checks every 10 and 20 steps) and trace of the wide path with the kernels; each run's
# whole output in fused-*.log (run.py stops where the kernels cannot run).  FUSED=on runs PART "main"
# with them.
# PEERS (default sklearn,celer,liblinear), PROBLEMS, DTYPES, LANES, REPEAT and *_TIMEOUT override.
set -u
out=${1:-benchmarks/results/gpu}
part=${2:-main}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/device.txt"
python3 -c "import jax, jaxlib, sys; print(sys.version.split()[0], 'jax', jax.__version__, jax.devices())" | tee -a "$out/device.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$out/device.txt"
if [ "$part" = unroll ]; then
  timeout ${ITER_TIMEOUT:-120} python3 benchmarks/iteration.py --problems wide --lanes 1,10 --dtypes float64 \
    --check-every 10 --unroll 0,1 --out "$out/unroll" 2>&1 | tail -8
  exit 0
fi
if [ "$part" = profile ]; then
  timeout ${PROFILE_TIMEOUT:-200} python3 benchmarks/profile.py --problems "${PROBLEMS:-wide,square}" \
    --block-sizes "${BLOCK_SIZES:-auto,30,40}" --check-every "${CHECK_EVERY:-10,20}" --trace 2>&1 | tee "$out/profile.txt"
  exit 0
fi
if [ "$part" = variants ]; then
  for d in ${VARIANTS:-.variants/*/}; do
    echo "== $d"
    PYTHONPATH="$d:$PYTHONPATH" timeout ${PROFILE_TIMEOUT:-60} python3 benchmarks/profile.py \
      --problems "${PROBLEMS:-wide,square}" --dtype "${DTYPE:-float64}" --min-seconds 0.5
  done 2>&1 | tee "$out/variants.txt"
  exit 0
fi
if [ "$part" = fused ]; then
  for f in off on off on ${FUSED_TILES-32,32,32,64,16}; do
    echo "== fused $f"
    case $f in off|on) opt="--fused $f";; *) opt="--fused on --fused-tiles $f";; esac
    timeout ${BENCH_TIMEOUT:-150} python3 benchmarks/run.py --out "$out/fused-$f" --peers "" --repeat "${REPEAT:-2}" \
      --dtypes "${DTYPES:-float64}" --problems "${PROBLEMS:-wide,cv}" $opt > "$out/fused-$f.log" 2>&1
    grep '^| [a-z0-9-]* |' "$out/fused-$f.log" || tail -5 "$out/fused-$f.log"  # the table, or why none
  done 2>&1 | tee "$out/fused.txt"
  timeout ${ITER_TIMEOUT:-120} python3 benchmarks/iteration.py --problems wide,square --lanes 20 --dtypes float64 \
    --fused 0,1 --out "$out/fused-iteration" 2>&1 | tee "$out/fused-iteration.log" | grep '^|' | tail -4
  timeout ${PROFILE_TIMEOUT:-120} python3 benchmarks/profile.py --problems wide --fused on --check-every 10,20 \
    --trace --top 16 \
    2>&1 | tee "$out/fused-profile.txt"
  exit 0
fi
if [ "$part" = autotune ]; then
  for v in "autotune-default:" "autotune-0:--xla_gpu_autotune_level=0" \
           "triton-off:--xla_gpu_enable_triton_gemm=false"; do
    name=${v%%:*}; flags=${v#*:}
    XLA_FLAGS="$flags" timeout ${BENCH_TIMEOUT:-150} python3 benchmarks/run.py --out "$out/$name" --peers "" \
      --repeat "${REPEAT:-1}" --dtypes float32,float64 --problems "${PROBLEMS:-wide,cv}" 2>&1 | grep -v '^|' | tail -6
  done
  exit 0
fi
if [ "$part" = graphs ]; then  # the while loops as CUDA graphs against XLA's defaults (not kept)
  timeout ${ITER_TIMEOUT:-120} python3 benchmarks/iteration.py --problems wide,square --lanes 1,10 \
    --dtypes float64 --graphs 0,1 --out "$out" 2>&1 | grep '^|' | tail -12
  for g in on off; do
    timeout ${BENCH_TIMEOUT:-150} python3 benchmarks/run.py --out "$out/graphs-$g" --peers "" --repeat "${REPEAT:-1}" \
      --dtypes float64 --problems "${PROBLEMS:-wide,square,cv}" --gpu-graphs $g 2>&1 | grep -v '^|' | tail -8
  done
  exit 0
fi
timeout ${ITER_TIMEOUT:-120} python3 benchmarks/iteration.py --problems wide,square --lanes "${LANES:-1,10}" \
  --dtypes "${ITER_DTYPES:-float64}" --fused "$([ "${FUSED:-off}" = on ] && echo 1 || echo 0)" --out "$out" \
  2>&1 | grep '^|' | tail -8
timeout ${BENCH_TIMEOUT:-420} python3 benchmarks/run.py --out "$out" --peers "${PEERS-sklearn,celer,liblinear}" --repeat "${REPEAT:-1}" \
  --block-sizes "${BLOCK_SIZES:-auto}" --dtypes "${DTYPES:-float64,float32}" --fused "${FUSED:-off}" \
  --problems "${PROBLEMS:-wide,square,cv,tall,logistic}" 2>&1 | grep -v '^|' | tail -40
cat "$out/results.md" 2>/dev/null
