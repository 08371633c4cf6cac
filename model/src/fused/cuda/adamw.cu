// k2's AdamW step on CUDA: one kernel per parameter that reads the gradient and updates the f32
// master weight and both moments in place (instead of about a dozen elementwise kernels and their
// temporaries), with the gradient-norm clip coefficient read from device memory, so a step needs
// no host sync until its norms are read.
//
// Bits: every element is computed with the operations, in the order, of the host loop
// (`trainer/src/optim.rs::step_host`), each rounded as IEEE f32 (`__fmul_rn` and friends keep
// NVRTC from contracting a multiply and an add into an FMA), so for the same clip coefficient
// the weights and moments equal the CPU's bit for bit. Sums of squares are f64 per block, in a
// fixed tree over a grid that depends on the element count only: deterministic, but added in an
// order different from the host's (the norms agree to f64 rounding, not bit for bit).
//
// Compiled at run time with NVRTC (no CUDA headers needed).

#define K2_THREADS 256

// Block-wide sum of one double per thread (blockDim.x == K2_THREADS), fixed tree.
__device__ double block_sum(double v, double* sh) {
  int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (int s = K2_THREADS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

// partials[blockIdx.x] = sum of x[i]^2 over the elements this block visits.
extern "C" __global__ void k2_sumsq_f32(const float* x, long n, double* partials) {
  __shared__ double sh[K2_THREADS];
  double acc = 0.0;
  for (long i = (long)blockIdx.x * K2_THREADS + threadIdx.x; i < n; i += (long)gridDim.x * K2_THREADS) {
    double d = (double)x[i];
    acc += d * d;
  }
  double s = block_sum(acc, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// One AdamW update of n elements. `grad_sumsq` points at the global sum of squared gradients;
// the clip coefficient is the host's `(max_norm / (sqrt(sumsq) + 1e-6)).min(1.0) as f32`.
// partials[blockIdx.x] and partials[gridDim.x + blockIdx.x]: this block's sums of the squared
// update and of the squared new weights.
extern "C" __global__ void k2_adamw_f32(float* w, const float* g, float* m, float* v, long n,
                                        const double* grad_sumsq, double max_norm, float b1, float b2,
                                        float bc2_sqrt, float step_size, float eps, float decay,
                                        double* partials) {
  __shared__ double sh[K2_THREADS];
  double c = max_norm / (sqrt(*grad_sumsq) + 1e-6);
  float coef = (float)(c < 1.0 ? c : 1.0);
  float one_b1 = __fsub_rn(1.0f, b1);
  float one_b2 = __fsub_rn(1.0f, b2);
  double un = 0.0, pn = 0.0;
  for (long i = (long)blockIdx.x * K2_THREADS + threadIdx.x; i < n; i += (long)gridDim.x * K2_THREADS) {
    float gi = __fmul_rn(g[i], coef);
    float old = w[i];
    float x = __fmul_rn(old, decay);
    float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_b1, gi));
    float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_b2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
    x = __fsub_rn(x, __fdiv_rn(__fmul_rn(step_size, mi), denom));
    w[i] = x;
    double d = (double)__fsub_rn(x, old);
    un += d * d;
    pn += (double)x * (double)x;
  }
  double su = block_sum(un, sh);
  double sp = block_sum(pn, sh);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = su;
    partials[gridDim.x + blockIdx.x] = sp;
  }
}
