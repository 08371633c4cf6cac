#!/usr/bin/env bash
# Peak memory and speed of `k2 eval` on a 7B-shaped bf16 checkpoint on the CPU (issue 10's memory
# target: peak RSS <= 1.1 x the weights' bytes + 1 GiB). A benchmark, not a CI test: it writes
# ~13.5 GB and needs ~16 GB of RAM.
#
#   bench/eval-7b-memory.sh [DIR]     # DIR: where the checkpoint goes (default /tmp/k2-amber7b-random)
#
# The checkpoint has LLM360 Amber's shape (hidden 4096, 32 layers, 32 heads, ffn 11008, vocab 32000),
# seeded random N(0, 0.02) weights stored in bf16, sharded at 5 GB as transformers' save_pretrained
# does, written tensor by tensor by `k2 model init` (never the whole model in memory). The tokenizer
# is stories260K's (ids < 32000), so the requests are real HellaSwag text.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/k2-amber7b-random}
# Benchmarks laid out like the Hub (hellaswag's first rows are enough: --limit 2).
DATA=${DATA:-fixtures/datasets}
K2=${K2:-target/release/k2}
[ -x "$K2" ] || cargo build --release
if [ ! -f "$DIR/model.safetensors.index.json" ]; then
  /usr/bin/time -f "init: %e s wall, %M KB max RSS" "$K2" model init amber-7b --out "$DIR" --dtype bf16 \
    --max-shard-size 5GB --tokenizer fixtures/models/stories260K-hf/tokenizer.json
fi
weights=$(cat "$DIR"/*.safetensors | wc -c)
log=$(mktemp)
/usr/bin/time -v "$K2" bench eval --model "$DIR" --tasks hellaswag --limit 2 --batch-size 8 \
  --device cpu --data "$DATA" --threads "$(nproc)" 2> "$log" | tee "$log.json"
rss_kb=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
python3 - "$weights" "$rss_kb" "$wall" "$log.json" <<'PY'
import json, sys
weights, rss_kb, wall, res = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = json.loads(open(res).read().strip().splitlines()[-1])
rss = rss_kb * 1024
target = 1.1 * weights + 2**30
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"cpu: {cpu}")
print(f"weights: {weights/2**30:.2f} GiB in bf16 shards; peak RSS: {rss/2**30:.2f} GiB "
      f"= {rss/weights:.3f} x weights; target <= {target/2**30:.2f} GiB: {'met' if rss <= target else 'NOT met'}")
print(f"process wall (load + score): {wall}; scoring {r['requests']} requests took {r['seconds']:.1f} s "
      f"= {r['seconds']/r['requests']:.2f} s/request ({r['dtype']} on {r['device']})")
PY
