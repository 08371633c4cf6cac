#!/usr/bin/env bash
# Prepares bench/gpu-check.sh for a lent GPU machine: builds the cuda binary (scripts/build-cuda.sh),
# compresses it into .gpu/k2.xz and copies the few files of ../shared/data the check reads into
# .gpu/data (the GPU machine gets the repository only). .gpu/ is ignored by git; name it in the
# device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-cuda.sh
mkdir -p .gpu/data/models
strip -o .gpu/k2.stripped target-cuda/release/k2
xz -T0 -6 -c .gpu/k2.stripped > .gpu/k2.xz
rm -f .gpu/k2.stripped
rm -f .gpu/k2
cp -r ../shared/data/models/stories260K-hf .gpu/data/models/
cp -r ../shared/data/hellaswag .gpu/data/
head -c 2000 ../shared/data/tinystories/tinystories_sample.txt > .gpu/data/story.txt
du -sh .gpu
