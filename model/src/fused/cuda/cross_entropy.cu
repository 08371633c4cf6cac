// k2's classifier loss on CUDA: mean cross-entropy of (N, V) logits (f32 or bf16) against N u32
// targets, and its gradient (softmax - onehot) * g / N in one pass per row, from the forward's
// per-row log-sum-exp (no probabilities kept). One block per row, f32 accumulation, fixed
// reduction trees: deterministic. The mean over rows is one block summing in f64. The upstream
// gradient is read from device memory, so neither direction needs a host sync.
//
// Compiled at run time with NVRTC (no CUDA headers needed).

// (bf16_t, ld, st and block_reduce come from common.cuh.)

// lse[row] = log sum exp(x[row]); row_loss[row] = lse[row] - x[row, target] (NaN for a target
// out of range).
template <typename T>
__device__ void xent_fwd(const T* x, const unsigned int* targets, long v, float* lse,
                         float* row_loss) {
  __shared__ float sh[1024];
  long row = blockIdx.x;
  const T* xr = x + row * v;
  float m = __int_as_float(0xff800000);  // -inf
  for (long j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, ld(xr, j));
  m = block_reduce(m, sh, true);
  float s = 0.0f;
  for (long j = threadIdx.x; j < v; j += blockDim.x) s += expf(ld(xr, j) - m);
  s = block_reduce(s, sh, false);
  if (threadIdx.x == 0) {
    float l = m + logf(s);
    unsigned int t = targets[row];
    lse[row] = l;
    row_loss[row] = t < (unsigned int)v ? l - ld(xr, (long)t) : __int_as_float(0x7fc00000);
  }
}

extern "C" __global__ void k2_xent_fwd_f32(const float* x, const unsigned int* t, long v, float* lse,
                                           float* row_loss) {
  xent_fwd(x, t, v, lse, row_loss);
}
extern "C" __global__ void k2_xent_fwd_bf16(const bf16_t* x, const unsigned int* t, long v, float* lse,
                                            float* row_loss) {
  xent_fwd(x, t, v, lse, row_loss);
}

// out[0] = mean of row_loss[0..n] (one block of 1024 threads, f64, fixed tree).
extern "C" __global__ void k2_xent_mean(const float* row_loss, long n, float* out) {
  __shared__ double sh[1024];
  double acc = 0.0;
  for (long i = threadIdx.x; i < n; i += blockDim.x) acc += (double)row_loss[i];
  int t = threadIdx.x;
  sh[t] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  if (t == 0) out[0] = n > 0 ? (float)(sh[0] / (double)n) : __int_as_float(0x7fc00000);
}

// d[row, j] = (exp(x[row, j] - lse[row]) - [j == target]) * g[0] / n.
template <typename T>
__device__ void xent_bwd(const T* x, const unsigned int* targets, const float* lse, const float* g,
                         long n, long v, T* d) {
  long row = blockIdx.x;
  const T* xr = x + row * v;
  T* dr = d + row * v;
  float scale = g[0] / (float)n;
  float l = lse[row];
  long t = (long)targets[row];
  for (long j = threadIdx.x; j < v; j += blockDim.x) {
    // As the CPU's grad_row_in_place: p * scale, then minus scale at the target.
    float r = expf(ld(xr, j) - l) * scale;
    if (j == t) r -= scale;
    st(dr, j, r);
  }
}

extern "C" __global__ void k2_xent_bwd_f32(const float* x, const unsigned int* t, const float* lse,
                                           const float* g, long n, long v, float* d) {
  xent_bwd(x, t, lse, g, n, v, d);
}
extern "C" __global__ void k2_xent_bwd_bf16(const bf16_t* x, const unsigned int* t, const float* lse,
                                            const float* g, long n, long v, bf16_t* d) {
  xent_bwd(x, t, lse, g, n, v, d);
}
