#!/usr/bin/env bash
# Prepares bench/gpu-check.sh for a lent GPU machine: builds the cuda binary (scripts/build-cuda.sh),
# compresses it into .gpu/k2.xz and puts what the check reads into .gpu/data: the model from
# fixtures/, HellaSwag laid out like the Hub (re-encoded from ../shared/data by
# scripts/hub_datasets_from_shared.py, which needs pyarrow), a TinyStories sample. .gpu/ is ignored by git; name it in the
# device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-cuda.sh --tests
mkdir -p .gpu/data/models .gpu/tests
cp target-cuda/gpu-tests/* .gpu/tests/
strip -o .gpu/k2.stripped target-cuda/release/k2
xz -T0 -6 -c .gpu/k2.stripped > .gpu/k2.xz
rm -f .gpu/k2.stripped
rm -f .gpu/k2
cp -r fixtures/models/stories260K-hf .gpu/data/models/
[ -d target/hub-data/Rowan ] || python3 scripts/hub_datasets_from_shared.py --full --out target/hub-data
mkdir -p .gpu/data/Rowan && cp -r target/hub-data/Rowan/hellaswag .gpu/data/Rowan/
head -c 2000 ../shared/data/tinystories/tinystories_sample.txt > .gpu/data/story.txt
du -sh .gpu
