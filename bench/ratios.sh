#!/usr/bin/env bash
# k2 against its references on the same work, run alternately and back to back on this machine;
# prints one row per workload: k2, the reference, the ratio (k2 speed / reference speed), and the
# CPU model and core count. Needs a release build (cargo build --release) and the Python
# references in $PY's environment (torch, transformers, lm-eval; see bench/lm_eval_parity/README.md).
#
#   bench/ratios.sh                  # 3 alternating runs per row, 2 threads
#   REPS=5 THREADS=2 bench/ratios.sh
#   ROWS=train bench/ratios.sh       # train rows only (ROWS=eval, ROWS=mmlu: those rows only)
#
# Rows: training step (tokens/s) on the default (16 x 128) and bench-17m (8 x 256) presets against
# bench/torch_train.py (PyTorch eager, f32); eval scoring (requests/s) on hellaswag 0-shot,
# limit 200, for stories260K and a random-weight 17M model, against lm-eval's HF backend
# (bench/lm_eval_parity/speed.py); MMLU 5-shot on 5 subjects, limit 20 each, on the 17M shape with
# a 4096-position context (every 5-shot prompt fits, so the subjects' shared prefixes are real).
# Medians of the alternating runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/pyref/bin/python}
K2=${K2:-target/release/k2}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
ROWS=${ROWS:-train,eval,mmlu}
# The benchmark copies the Python references read (lm-eval gets them converted by compare.py; k2
# reads them re-encoded like the Hub into target/hub-data, made once by speed.py).
DATA=${DATA:-../shared/data}
M17=${M17:-/tmp/k2-ratios-m17}
M17_4K=${M17_4K:-/tmp/k2-ratios-m17-4k}
OUT=${OUT:-bench/lm_eval_parity/work/ratios}
CPU=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
CORES=$(nproc)

for need in "$K2" "$PY"; do
  if [ ! -x "$need" ]; then
    echo "error: $need not found (build with cargo build --release; set PY= to a Python with torch and lm-eval)" >&2
    exit 1
  fi
done
mkdir -p "$OUT"
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { "$PY" -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

rows=()
mfu=()
row() {
  rows+=("| $1 | $(printf '%.1f' "$2") | $(printf '%.1f' "$3") | $4 | **$(awk "BEGIN {printf \"%.2f\", $2/$3}")x** | $CPU | $CORES |")
}

if [[ ",$ROWS," == *",train,"* ]]; then
  for spec in "default 16 128 20" "bench-17m 8 256 6"; do
    set -- $spec
    preset=$1 batch=$2 seq=$3 steps=$4
    : > "$OUT/train-$preset-k2.txt"
    : > "$OUT/train-$preset-torch.txt"
    : > "$OUT/train-$preset-k2.jsonl"
    : > "$OUT/train-$preset-torch.jsonl"
    for _ in $(seq "$REPS"); do
      "$K2" bench train --preset "$preset" --batch "$batch" --seq "$seq" --threads "$THREADS" \
        --steps "$steps" --json 2>/dev/null | tail -1 >> "$OUT/train-$preset-k2.jsonl"
      tail -1 "$OUT/train-$preset-k2.jsonl" | field tokens_per_s >> "$OUT/train-$preset-k2.txt"
      "$PY" bench/torch_train.py --preset "$preset" --batch "$batch" --seq "$seq" \
        --threads "$THREADS" --steps "$steps" 2>/dev/null | tail -1 >> "$OUT/train-$preset-torch.jsonl"
      tail -1 "$OUT/train-$preset-torch.jsonl" | field tokens_per_s >> "$OUT/train-$preset-torch.txt"
    done
    k=$(median < "$OUT/train-$preset-k2.txt")
    t=$(median < "$OUT/train-$preset-torch.txt")
    row "train $preset ${batch}x${seq} f32, tokens/s" "$k" "$t" "PyTorch eager"
    # MFU of both against the f32 peak k2 measured (vector FMAs on every thread), median runs.
    mfu+=("$("$PY" - "$OUT/train-$preset-k2.jsonl" "$OUT/train-$preset-torch.jsonl" "$preset" <<'PYEOF'
import json, statistics, sys
k2 = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pt = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
peak = statistics.median(r["peak_tflops"] for r in k2)
src = k2[0]["peak_source"]
mk = statistics.median(r["achieved_tflops"] for r in k2) / peak
mt = statistics.median(r["achieved_tflops"] for r in pt) / peak
print(f"MFU train {sys.argv[3]}: k2 {100 * mk:.1f}%, PyTorch {100 * mt:.1f}% of {1000 * peak:.0f} GFLOP/s ({src})")
PYEOF
    )")
  done
fi

# A random-weight bench-17m model with the stories260K tokenizer, as lm-eval's HF loader reads it
# (the tokenizer's config, with the BOS id, beside tokenizer.json); extra arguments go to init.
m17() {
  local dir=$1
  shift
  if [ ! -d "$dir" ]; then
    "$K2" model init bench-17m --out "$dir" \
      --tokenizer fixtures/models/stories260K-hf/tokenizer.json "$@" > /dev/null
  fi
  for f in tokenizer_config.json special_tokens_map.json tokenizer.model; do
    cp "fixtures/models/stories260K-hf/$f" "$dir/"
  done
}

if [[ ",$ROWS," == *",eval,"* ]]; then
  m17 "$M17"
  "$PY" bench/lm_eval_parity/speed.py --models fixtures/models/stories260K-hf "$M17" \
    --reps "$REPS" --threads "$THREADS" --no-single --no-e2e --data "$DATA" \
    --json "$OUT/speed.json" > "$OUT/speed.txt"
  for model in fixtures/models/stories260K-hf "$M17"; do
    read -r k t < <("$PY" - "$OUT/speed.json" "$model" <<'PYEOF'
import json, statistics, sys
runs = json.load(open(sys.argv[1]))["runs"]
med = lambda impl: statistics.median(r["requests"] / r["seconds"] for r in runs
                                     if r["model"] == sys.argv[2] and r["impl"] == impl and "seconds" in r)
print(med("k2"), med("lm-eval"))
PYEOF
    )
    row "eval hellaswag 0-shot limit 200, $(basename "$model"), requests/s" "$k" "$t" "lm-eval 0.4 HF"
  done
fi

if [[ ",$ROWS," == *",mmlu,"* ]]; then
  m17 "$M17_4K" --max-positions 4096
  "$PY" bench/lm_eval_parity/speed.py --task mmlu --models "$M17_4K" \
    --reps "$REPS" --threads "$THREADS" --no-single --no-e2e --data "$DATA" \
    --json "$OUT/speed-mmlu.json" > "$OUT/speed-mmlu.txt"
  read -r k t < <("$PY" - "$OUT/speed-mmlu.json" <<'PYEOF'
import json, statistics, sys
runs = json.load(open(sys.argv[1]))["runs"]
med = lambda impl: statistics.median(r["requests"] / r["seconds"] for r in runs
                                     if r["impl"] == impl and "seconds" in r)
print(med("k2"), med("lm-eval"))
PYEOF
  )
  row "eval MMLU 5-shot, 5 subjects x limit 20, 17M shape 4096 positions, requests/s" "$k" "$t" "lm-eval 0.4 HF"
fi

echo
echo "| work | k2 | reference | against | k2 / reference | CPU | cores |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
if [ ${#mfu[@]} -gt 0 ]; then printf '%s\n' "${mfu[@]}"; echo; fi
echo "threads $THREADS, medians of $REPS alternating runs; raw values under $OUT"
