//! SwiGLU `silu(g) · u` (the LLaMA MLP's gate), with gradients for both inputs from one pass.

use crate::parallel::{par_chunks2_mut, par_chunks_mut};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::exp::exp_in_place;
use super::{cpu_f32, f32_slice};

/// Elements per parallel task.
const TASK: usize = 16384;

/// `silu(gate) · up` for same-shaped tensors. Fused on CPU f32, [`swiglu_composite`] otherwise.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !cpu_f32(&[gate, up]) || gate.dims() != up.dims() {
        return swiglu_composite(gate, up);
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

/// The same function from differentiable candle ops.
pub fn swiglu_composite(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

/// `y = silu(g) · u`, elementwise, in parallel tasks; with `sig`, also each element's
/// `sigmoid(g)` as the backward computes it, for [`swiglu_grad`] to read instead of recomputing.
pub(crate) fn swiglu_into(g: &[f32], u: &[f32], y: &mut [f32], sig: Option<&mut [f32]>) {
    let Some(sig) = sig else {
        par_chunks_mut(y, TASK, |c, yc| {
            let (gc, uc) = (&g[c * TASK..], &u[c * TASK..]);
            // exp(−g) first (vectorised), then the rest.
            yc.iter_mut().zip(gc).for_each(|(e, &gv)| *e = -gv);
            exp_in_place(yc);
            for ((yv, &gv), &uv) in yc.iter_mut().zip(gc).zip(uc) {
                *yv = gv / (1.0 + *yv) * uv;
            }
        });
        return;
    };
    par_chunks2_mut(y, sig, TASK, |c, yc, sc| {
        let (gc, uc) = (&g[c * TASK..], &u[c * TASK..]);
        sc.iter_mut().zip(gc).for_each(|(e, &gv)| *e = -gv);
        exp_in_place(sc);
        for i in 0..yc.len() {
            let e = sc[i];
            yc[i] = gc[i] / (1.0 + e) * uc[i];
            sc[i] = 1.0 / (1.0 + e);
        }
    });
}

/// The backward of [`swiglu_into`] for the output gradient `dy`: `dg` and `du` (the sigmoids
/// read from `sig` when the forward kept them: the same values).
pub(crate) fn swiglu_grad(
    g: &[f32],
    u: &[f32],
    dy: &[f32],
    dg: &mut [f32],
    du: &mut [f32],
    sig: Option<&[f32]>,
) {
    par_chunks2_mut(dg, du, TASK, |c, dgc, duc| {
        let (gc, uc, dyc) = (&g[c * TASK..], &u[c * TASK..], &dy[c * TASK..]);
        let kept = sig.map(|s| &s[c * TASK..]);
        if kept.is_none() {
            // exp(−g) into dg first (vectorised); each element is read before it is written.
            dgc.iter_mut().zip(gc).for_each(|(e, &gv)| *e = -gv);
            exp_in_place(dgc);
        }
        for i in 0..dgc.len() {
            let (gv, uv, d) = (gc[i], uc[i], dyc[i]);
            let s = match kept {
                Some(k) => k[i],
                None => 1.0 / (1.0 + dgc[i]),
            };
            let silu = gv * s;
            duc[i] = d * silu;
            dgc[i] = d * uv * (s + silu * (1.0 - s));
        }
    });
}

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "k2-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = f32_slice(s1, l1, self.name())?;
        let u = f32_slice(s2, l2, self.name())?;
        let mut y = vec![0f32; g.len()];
        swiglu_into(g, u, &mut y, None);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = gate.elem_count();
        let both = gate.apply_op3_no_bwd(up, &grad.contiguous()?, &SwiGluBwd)?;
        let dg = both.narrow(0, 0, n)?.reshape(gate.shape())?;
        let du = both.narrow(0, n, n)?.reshape(up.shape())?;
        Ok((Some(dg), Some(du)))
    }
}

/// (g, u, dy) -> [dg ++ du].
struct SwiGluBwd;

impl CustomOp3 for SwiGluBwd {
    fn name(&self) -> &'static str {
        "k2-swiglu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = f32_slice(s1, l1, self.name())?;
        let u = f32_slice(s2, l2, self.name())?;
        let dy = f32_slice(s3, l3, self.name())?;
        let n = g.len();
        let mut out = vec![0f32; 2 * n];
        let (dg, du) = out.split_at_mut(n);
        swiglu_grad(g, u, dy, dg, du, None);
        Ok((CpuStorage::F32(out), Shape::from(2 * n)))
    }
}
