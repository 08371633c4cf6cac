#!/usr/bin/env bash
# Builds the `cuda` feature of k2 on a machine without a GPU or a system CUDA install, as
# docs/gpu.md describes: nvcc 13.0 and the CUDA libraries from PyPI wheels, a link-time stub for
# libcuda (the real one comes with the driver on the GPU machine), compute capability 9.0 (H100/H200).
#
#   scripts/build-cuda.sh                 # -> target-cuda/release/k2
#   CUDA_VENV=/path CUDA_ROOT=/path scripts/build-cuda.sh --bin k2
#   scripts/build-cuda.sh --tests         # also the CUDA test binaries of k2-model and k2-trainer,
#                                         # copied to target-cuda/gpu-tests/, and runs the NVRTC check
#
# Other arguments go to `cargo build`. The first build takes ~20 minutes on 2 cores (candle-kernels
# compiles its .cu files one by one); keep target-cuda/ and later builds take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_VENV=${CUDA_VENV:-$PWD/.cuda/venv}
CUDA_ROOT=${CUDA_ROOT:-$PWD/.cuda/root}
PY=${PYTHON:-python3}

if [ ! -x "$CUDA_VENV/bin/pip" ]; then
  "$PY" -m venv "$CUDA_VENV"
fi
# Pinned to 13.0.x: PTX from a newer nvcc does not load on a 13.0 driver.
"$CUDA_VENV/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 \
  nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85 nvidia-nvvm==13.0.88 nvidia-cuda-nvrtc==13.0.88 \
  nvidia-curand==10.4.0.35 'nvidia-cublas==13.0.*'
C=$(echo "$CUDA_VENV"/lib/python3*/site-packages/nvidia/cu13)
[ -x "$C/bin/nvcc" ] || { echo "error: nvcc not found under $C/bin" >&2; exit 1; }

mkdir -p "$CUDA_ROOT/lib/stubs"
# The wheels ship only versioned sonames; the linker wants the plain names.
for l in cudart.so.13 nvrtc.so.13 curand.so.10 cublas.so.13 cublasLt.so.13; do
  ln -sf "$C/lib/lib$l" "$CUDA_ROOT/lib/lib${l%%.so*}.so"
done

cargo fetch
CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | head -1)
# libcuda comes only with the driver: a stub with the right soname satisfies the linker, and the
# driver's library is used at run time.
grep -oh 'load::<_F>("[A-Za-z0-9_]*")' "$CUDARC/src/driver/sys/mod.rs" \
  | sed 's/load::<_F>("//;s/")//' | sort -u | awk '{print "int " $1 "(void){return 999;}"}' \
  > "$CUDA_ROOT/stub.c"
gcc -shared -fPIC -o "$CUDA_ROOT/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$CUDA_ROOT/stub.c"

export PATH=$C/bin:$PATH CUDA_HOME=$CUDA_ROOT CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} \
  CPLUS_INCLUDE_PATH=$C/include LIBRARY_PATH=$CUDA_ROOT/lib:$CUDA_ROOT/lib/stubs:${LIBRARY_PATH:-}
TESTS=0
if [ "${1:-}" = "--tests" ]; then TESTS=1; shift; fi
cargo build --release --features cuda --target-dir target-cuda "$@"
echo "built: target-cuda/release/k2 (cuda, compute capability $CUDA_COMPUTE_CAP)"
if [ "$TESTS" = 1 ]; then
  rm -rf target-cuda/gpu-tests && mkdir -p target-cuda/gpu-tests
  cargo test --release --features cuda --target-dir target-cuda -p k2-model -p k2-trainer --lib \
    --no-run --message-format=json 2>/dev/null \
    | "$PY" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | while read -r exe; do cp "$exe" target-cuda/gpu-tests/; done
  ls target-cuda/gpu-tests
  # NVRTC needs no GPU: the kernel sources are checked here, against the stub driver library.
  ln -sf libcuda.so "$CUDA_ROOT/lib/stubs/libcuda.so.1"
  LD_LIBRARY_PATH=$C/lib:$CUDA_ROOT/lib/stubs:${LD_LIBRARY_PATH:-} \
    target-cuda/gpu-tests/k2_model-* every_kernel_compiles_with_nvrtc
fi
