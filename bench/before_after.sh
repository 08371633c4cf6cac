#!/usr/bin/env bash
# Two k2 binaries (before and after a change) on the bench/ratios.sh workloads, run alternately on
# this machine with 2 threads; prints a table of medians of REPS runs and after/before. The PyTorch
# and lm-eval references are not run: with them unchanged, each ratio in bench/ratios.sh moves by
# after/before. Needs the Hub-laid-out data (scripts/hub_datasets_from_shared.py --full --out
# target/hub-data) and the random 17M models bench/ratios.sh makes (M17, M17_4K).
#
#   OLD=/tmp/k2-old NEW=target/release/k2 bench/before_after.sh
set -u
cd "$(dirname "$0")/.."
OLD=${OLD:?set OLD= to the binary before the change} NEW=${NEW:-target/release/k2} REPS=${REPS:-3}
DATA=${DATA:-target/hub-data}
M17=${M17:-/tmp/k2-ratios-m17}
M17_4K=${M17_4K:-/tmp/k2-ratios-m17-4k}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
run() { # label cmd...
  local label=$1; shift
  for which in old new; do : > ${TMPDIR:-/tmp}/k2-ba-$label-$which.txt; done
  for _ in $(seq $REPS); do
    for which in old new; do
      bin=$OLD; [ $which = new ] && bin=$NEW
      "$bin" "$@" 2>/dev/null | grep '^{' > ${TMPDIR:-/tmp}/k2-ba-one.raw
      cat ${TMPDIR:-/tmp}/k2-ba-one.raw >> ${TMPDIR:-/tmp}/k2-ba-$label-$which.raw
      python3 -c "
import json,sys
ls=[json.loads(l) for l in open('${TMPDIR:-/tmp}/k2-ba-one.raw') if l.strip()]
if 'tokens_per_s' in ls[-1]: print(ls[-1]['tokens_per_s'])
else: print(sum(l['requests'] for l in ls)/sum(l['seconds'] for l in ls))" >> ${TMPDIR:-/tmp}/k2-ba-$label-$which.txt
    done
  done
  o=$(median < ${TMPDIR:-/tmp}/k2-ba-$label-old.txt); n=$(median < ${TMPDIR:-/tmp}/k2-ba-$label-new.txt)
  echo "| $label | $o | $n | $(python3 -c "print(f'{$n/$o:.3f}')") |"
}
rm -f ${TMPDIR:-/tmp}/k2-ba-*.raw
echo "| work | before | after | after/before |"
echo "|---|---|---|---|"
run train-default bench train --preset default --batch 16 --seq 128 --threads 2 --steps 20 --json
run train-17m bench train --preset bench-17m --batch 8 --seq 256 --threads 2 --steps 6 --json
run hellaswag-260K bench eval --model fixtures/models/stories260K-hf --tasks hellaswag --shots hellaswag=0 --limit 200 --batch-size 8 --threads 2 --data $DATA
run hellaswag-17m bench eval --model $M17 --tasks hellaswag --shots hellaswag=0 --limit 200 --batch-size 8 --threads 2 --data $DATA
run mmlu-17m-4k bench eval --model $M17_4K --tasks mmlu_abstract_algebra,mmlu_anatomy,mmlu_astronomy,mmlu_college_biology,mmlu_high_school_geography --shots mmlu=5 --limit 20 --batch-size 8 --threads 2 --data $DATA
