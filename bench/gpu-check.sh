#!/usr/bin/env bash
# The GPU check of issue 10, in one call on a lent GPU machine (<= 8 minutes on an H100/H200).
# Prepare it here with bench/gpu-prepare.sh (builds the cuda binary, copies the data it reads into
# .gpu/), then on the GPU machine, from the repository root:
#
#   bench/gpu-check.sh            # everything is written to $OUT (default /tmp/gpu-check)
#
# Correctness: stories260K per-token log-probs on cuda f32 vs CPU (<= 1e-4) and bf16 (<= 3e-2 mean),
#   with transformers as an independent reference; the default run's recipe (10 steps per
#   checkpoint, no injected spike) trained on cuda f32 vs CPU (loss <= 1e-3 at every step), twice on
#   cuda (bit-identical files), in bf16 on cuda; `k2 verify --device cuda` on both cuda runs.
# Speed: `k2 bench train --dtype bf16` at 134M (16 x 512) and 1.1B (TinyLlama, 4 x 2048) beside
#   bench/torch_train.py (eager+SDPA, and torch.compile) in the same run; eval requests/s on
#   HellaSwag at the 134M shape beside a transformers HF-backend-style loglikelihood loop.
# Each step has its own time limit; one that fails or runs out is reported and the next one runs.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
LOG=$OUT/gpu-check.log
G=.gpu
DATA=$G/data
K2=${K2:-$G/k2}
W=/tmp/gpu-work
DEV=${DEV:-cuda}   # DEV=cpu runs the same script on a machine without a GPU (a dry run)
rm -rf "$W" && mkdir -p "$W"
[ -x "$K2" ] || { xz -dkf "$G/k2.xz" && chmod +x "$K2"; }

# The CUDA libraries k2 links (cuBLAS, cuRAND, NVRTC, runtime) from the image's PyTorch wheels.
SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
for d in $(find "$SITE/nvidia" -name 'lib*.so.1[0-9]*' -printf '%h\n' 2>/dev/null | sort -u); do
  LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH

say() { echo "== $*" | tee -a "$LOG"; }
if [ "$DEV" = cuda ]; then
  SECTIONS=${SECTIONS:-kernels,score,train,speed,eval,compile}   # a subset reruns only those
else
  SECTIONS=${SECTIONS:-score,train,eval}   # a dry run without a GPU: no speed figures
fi
want() { [[ ",$SECTIONS," == *",$1,"* ]]; }
START=$(date +%s)
BUDGET=${BUDGET:-540}   # seconds for the whole check; each step gets at most what is left
step() { # step NAME SECONDS CMD... : runs CMD with a limit, stdout+stderr to the log
  local name=$1 secs=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ "$left" -lt 15 ]; then say "$name: skipped, the ${BUDGET}s budget is spent"; return 1; fi
  [ "$secs" -gt "$left" ] && secs=$left
  say "$name"
  local t0=$(date +%s.%N)
  timeout "$secs" "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "   [$name: rc=$rc, $(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')") s]" | tee -a "$LOG"
  return $rc
}

say "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  grep -m1 "model name" /proc/cpuinfo; nproc; "$K2" --version; } >>"$LOG" 2>&1

M=$DATA/models/stories260K-hf
TXT=$DATA/story.txt
PY="python3 bench/gpu_check.py"

# 0. k2's CUDA kernels against their CPU definitions (test binaries from scripts/build-cuda.sh --tests):
#    the AdamW kernel equals the host loop bit for bit.
if want kernels; then
for t in $G/tests/k2_model-* $G/tests/k2_trainer-*; do
  [ -x "$t" ] || continue
  step "kernel tests $(basename "$t")" 60 "$t" --test-threads 1 cuda nvrtc
done
fi

# 1. Per-token log-probs: k2 cpu f32 / cuda f32 / cuda bf16, transformers cuda f32 / bf16.
if want score; then
step "score cpu f32" 60 sh -c "$K2 model score $M --file $TXT --device cpu --dtype f32 > $W/s_cpu.json"
step "score cuda f32" 60 sh -c "$K2 model score $M --file $TXT --device $DEV --dtype f32 > $W/s_cuda.json"
step "score cuda bf16" 60 sh -c "$K2 model score $M --file $TXT --device $DEV --dtype bf16 > $W/s_cuda_bf16.json"
step "score cuda f32, composite softmax" 60 sh -c "K2_CUDA_FUSED=0 $K2 model score $M --file $TXT --device $DEV --dtype f32 > $W/s_cuda_comp.json"
step "score cpu bf16" 60 sh -c "$K2 model score $M --file $TXT --device cpu --dtype bf16 > $W/s_cpu_bf16.json"
step "transformers f32" 120 $PY hf-score $M $TXT --device $DEV --dtype f32 --out $W/s_hf.json
step "transformers bf16" 60 $PY hf-score $M $TXT --device $DEV --dtype bf16 --out $W/s_hf_bf16.json
step "compare" 30 sh -c "$PY compare-scores $W/s_cpu.json $W/s_cuda.json --label 'k2 cpu f32 vs k2 cuda f32 (<= 1e-4)'; \
  $PY compare-scores $W/s_cpu.json $W/s_cuda_bf16.json --label 'k2 cpu f32 vs k2 cuda bf16 (<= 3e-2)'; \
  $PY compare-scores $W/s_hf.json $W/s_cuda.json --label 'transformers cuda f32 vs k2 cuda f32'; \
  $PY compare-scores $W/s_hf_bf16.json $W/s_cuda_bf16.json --label 'transformers cuda bf16 vs k2 cuda bf16'; \
  $PY compare-scores $W/s_cpu_bf16.json $W/s_cuda_bf16.json --label 'k2 cpu bf16 vs k2 cuda bf16'; \
  $PY compare-scores $W/s_cuda_comp.json $W/s_cuda.json --label 'k2 cuda f32 composite vs fused softmax'"

fi

# 2. Training: the default recipe with 10 steps per checkpoint and no injected spike (160 steps).
if want train; then
awk '/^\[\[inject_spike\]\]/ {skip=1; next} /^\[/ {skip=0} !skip' configs/default.toml \
  | sed 's/^steps_per_checkpoint = 40/steps_per_checkpoint = 10/' > $W/gpu.toml
step "train cpu f32" 120 $K2 train --quiet --config $W/gpu.toml --out $W/cpu --device cpu
step "train cuda f32" 90 $K2 train --quiet --config $W/gpu.toml --out $W/cuda --device $DEV
step "train cuda f32 again" 90 $K2 train --quiet --config $W/gpu.toml --out $W/cuda2 --device $DEV
step "train cuda bf16" 90 $K2 train --quiet --config $W/gpu.toml --out $W/bf16 --device $DEV --dtype bf16
step "compare runs" 30 sh -c "$PY compare-losses $W/cpu $W/cuda --steps 20; \
  $PY compare-manifests $W/cuda $W/cuda2; $PY compare-losses $W/cuda $W/bf16 --steps 20"
step "verify cuda f32" 90 $K2 verify --run $W/cuda --from ckpt_0003 --to ckpt_0006 --device $DEV
step "verify cuda bf16" 90 $K2 verify --run $W/bf16 --from ckpt_0003 --to ckpt_0006 --device $DEV

fi


# 3. Training speed, bf16, k2 beside PyTorch in the same run.
if want speed; then
step "k2 134M bf16" 120 $K2 bench train --preset bench-134m --batch 16 --seq 512 --device $DEV --dtype bf16 --warmup 3 --steps 10 --json
step "k2 134M bf16, composite softmax" 90 env K2_CUDA_FUSED=0 $K2 bench train --preset bench-134m --batch 16 --seq 512 --device $DEV --dtype bf16 --warmup 3 --steps 10 --json
step "k2 134M f32" 90 $K2 bench train --preset bench-134m --batch 16 --seq 512 --device $DEV --dtype f32 --warmup 3 --steps 10 --json
step "torch 134M eager+sdpa" 120 python3 bench/torch_train.py --preset bench-134m --device $DEV --dtype bf16 --attn sdpa --warmup 3 --steps 10
step "k2 1.1B bf16" 150 $K2 bench train --preset tinyllama-1.1b --batch 4 --seq 2048 --device $DEV --dtype bf16 --warmup 2 --steps 6 --json
step "torch 1.1B eager+sdpa" 120 python3 bench/torch_train.py --preset tinyllama-1.1b --device $DEV --dtype bf16 --attn sdpa --warmup 2 --steps 6

fi

# 4. Eval speed at the 134M shape (random bf16 weights, stories260K's tokenizer), HellaSwag 0-shot.
if want eval; then
step "init 134M" 60 $K2 model init bench-134m --out $W/m134 --dtype bf16 --tokenizer $M/tokenizer.json
cp $M/tokenizer_config.json $M/special_tokens_map.json $W/m134/ 2>/dev/null  # for AutoTokenizer
step "k2 bench eval" 120 $K2 bench eval --model $W/m134 --tasks hellaswag --shots hellaswag=0 --limit 200 --batch-size 8 --device $DEV --data $DATA
step "k2 eval (samples)" 120 $K2 eval --quiet --model $W/m134 --tasks hellaswag --shots hellaswag=0 --limit 200 --batch-size 8 --device $DEV --data $DATA --output $W/ev
step "transformers loglik" 120 $PY hf-loglik $W/m134 $W/ev/hellaswag.samples.jsonl --device $DEV --dtype bf16 --batch 8

fi

# 5. torch.compile references last: they take the longest to start.
if want compile || want compile134m; then
step "torch 134M compile" 180 python3 bench/torch_train.py --preset bench-134m --device $DEV --dtype bf16 --attn sdpa --compile --warmup 5 --steps 10
fi
if want compile || want compile1b; then
step "torch 1.1B compile" 200 python3 bench/torch_train.py --preset tinyllama-1.1b --device $DEV --dtype bf16 --attn sdpa --compile --warmup 4 --steps 6
fi
say "done in $(( $(date +%s) - START )) s"
grep -E '^\{|^== |\[.*rc=' "$LOG" > "$OUT/summary.txt"
exit 0
