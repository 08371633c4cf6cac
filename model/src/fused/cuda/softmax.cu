// k2's scaled causal softmax and its backward on CUDA, for f32 and bf16 tensors, accumulating in
// f32. One block per row; the reductions use a fixed tree, so results do not depend on timing
// (deterministic). Compiled at run time with NVRTC (no CUDA headers needed: bf16 is handled as
// raw 16-bit patterns with round-to-nearest-even, as PyTorch and candle round).
//
// A row of `tk` keys belongs to query i = row % tq, which sees keys j with j + tq <= i + tk
// (tq = 0: not causal, every key is seen).

// (bf16_t, ld, st and block_reduce come from common.cuh.)

__device__ __forceinline__ int allowed_keys(long row, int tk, int tq) {
  if (tq <= 0) return tk;
  int i = (int)(row % tq);
  int n = i + tk + 1 - tq;
  return n < 0 ? 0 : (n > tk ? tk : n);
}

template <typename T>
__device__ void softmax_fwd(const T* x, T* y, int tk, int tq, float scale) {
  __shared__ float sh[1024];
  long row = blockIdx.x;
  int n = allowed_keys(row, tk, tq);
  const T* xr = x + row * (long)tk;
  T* yr = y + row * (long)tk;
  if (n == 0) {  // every key masked: NaN, as the composite softmax of all -inf gives
    for (int j = threadIdx.x; j < tk; j += blockDim.x) st(yr, j, __int_as_float(0x7fc00000));
    return;
  }
  float m = __int_as_float(0xff800000);
  for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, ld(xr, j) * scale);
  m = block_reduce(m, sh, true);
  float s = 0.f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) s += __expf(ld(xr, j) * scale - m);
  s = block_reduce(s, sh, false);
  float inv = 1.f / s;
  for (int j = threadIdx.x; j < tk; j += blockDim.x)
    st(yr, j, j < n ? __expf(ld(xr, j) * scale - m) * inv : 0.f);
}

// dx = scale * y * (g - sum_j y_j g_j) over the keys the row sees; 0 elsewhere.
template <typename T>
__device__ void softmax_bwd(const T* y, const T* g, T* dx, int tk, int tq, float scale) {
  __shared__ float sh[1024];
  long row = blockIdx.x;
  int n = allowed_keys(row, tk, tq);
  const T* yr = y + row * (long)tk;
  const T* gr = g + row * (long)tk;
  T* dr = dx + row * (long)tk;
  float dot = 0.f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) dot += ld(yr, j) * ld(gr, j);
  dot = block_reduce(dot, sh, false);
  for (int j = threadIdx.x; j < tk; j += blockDim.x)
    st(dr, j, j < n ? scale * ld(yr, j) * (ld(gr, j) - dot) : 0.f);
}

extern "C" __global__ void k2_softmax_fwd_f32(const float* x, float* y, int tk, int tq, float scale) {
  softmax_fwd(x, y, tk, tq, scale);
}
extern "C" __global__ void k2_softmax_fwd_bf16(const bf16_t* x, bf16_t* y, int tk, int tq, float scale) {
  softmax_fwd(x, y, tk, tq, scale);
}
extern "C" __global__ void k2_softmax_bwd_f32(const float* y, const float* g, float* dx, int tk, int tq,
                                              float scale) {
  softmax_bwd(y, g, dx, tk, tq, scale);
}
extern "C" __global__ void k2_softmax_bwd_bf16(const bf16_t* y, const bf16_t* g, bf16_t* dx, int tk,
                                               int tq, float scale) {
  softmax_bwd(y, g, dx, tk, tq, scale);
}
