// Shared by k2's CUDA kernels (prepended to each source before NVRTC compiles it): f32 and bf16
// loads and stores (bf16 as raw 16-bit patterns, rounded to nearest even as PyTorch and candle
// round, NaN kept NaN) and a block-wide max or sum in a fixed tree.

typedef unsigned short bf16_t;

__device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16_t* p, long i) {
  return __uint_as_float(((unsigned int)p[i]) << 16);
}
__device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16_t* p, long i, float v) {
  unsigned int u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN stays NaN
    p[i] = (bf16_t)((u >> 16) | 0x40u);
    return;
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  p[i] = (bf16_t)(u >> 16);
}

// Block-wide max or sum over blockDim.x (a power of two) values.
__device__ float block_reduce(float v, float* sh, bool is_max) {
  int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = is_max ? fmaxf(sh[t], sh[t + s]) : sh[t] + sh[t + s];
    __syncthreads();
  }
  float r = sh[0];
  __syncthreads();
  return r;
}
