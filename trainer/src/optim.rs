//! AdamW with K2's parameter groups (weight decay on matrices only, not on norm gains), global
//! gradient-norm clipping, and state that can be saved and restored exactly. The update is one
//! fused loop per tensor over f32 slices (candle's AdamW has no groups, no clipping, and hides its
//! moments). Arithmetic follows torch.optim.AdamW (decoupled decay, bias-corrected moments).

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

struct Param {
    name: String,
    var: Var,
    decay: bool,
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<Param>,
    step: u64,
}

/// Norms of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Global parameter norm after the update.
    pub param_norm: f64,
    /// Norm of the parameter change.
    pub update_norm: f64,
}

/// Accumulated gradients, one flat f32 buffer per parameter (same order as the optimizer's).
pub struct Grads(pub Vec<Vec<f32>>);

impl AdamW {
    /// Parameters in name order; matrices (rank >= 2) get weight decay, vectors do not.
    pub fn new(vars: &BTreeMap<String, Var>, cfg: AdamWConfig) -> Self {
        let params = vars
            .iter()
            .map(|(name, var)| Param {
                name: name.clone(),
                var: var.clone(),
                decay: var.rank() >= 2,
                m: vec![0.0; var.elem_count()],
                v: vec![0.0; var.elem_count()],
            })
            .collect();
        Self {
            cfg,
            params,
            step: 0,
        }
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn zero_grads(&self) -> Grads {
        Grads(self.params.iter().map(|p| vec![0.0; p.m.len()]).collect())
    }

    /// Adds `scale * grad` of every parameter from a backward pass into `acc`.
    pub fn accumulate(
        &self,
        acc: &mut Grads,
        store: &candle_core::backprop::GradStore,
        scale: f32,
    ) -> Result<()> {
        for (p, buf) in self.params.iter().zip(acc.0.iter_mut()) {
            let g = store
                .get(p.var.as_tensor())
                .ok_or_else(|| TrainError::Resume(format!("no gradient for {}", p.name)))?;
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            for (b, x) in buf.iter_mut().zip(g) {
                *b += scale * x;
            }
        }
        Ok(())
    }

    /// Clips `grads` to global norm `max_norm` (torch's `clip_grad_norm_`), then applies one AdamW
    /// update with learning rate `lr`.
    pub fn step(&mut self, grads: &mut Grads, lr: f64, max_norm: f64) -> Result<StepStats> {
        let grad_norm = grads
            .0
            .iter()
            .flat_map(|g| g.iter())
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        let coef = (max_norm / (grad_norm + 1e-6)).min(1.0) as f32;
        self.step += 1;
        let c = self.cfg;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2_sqrt = (1.0 - c.beta2.powi(self.step as i32)).sqrt() as f32;
        let step_size = (lr / bc1) as f32;
        let eps = c.eps as f32;
        let mut pn = 0.0f64;
        let mut un = 0.0f64;
        for (p, g) in self.params.iter_mut().zip(grads.0.iter()) {
            let mut w: Vec<f32> = p.var.as_tensor().flatten_all()?.to_vec1()?;
            let decay = if p.decay {
                1.0 - (lr * c.weight_decay) as f32
            } else {
                1.0
            };
            for i in 0..w.len() {
                let gi = g[i] * coef;
                let old = w[i];
                let mut x = old * decay;
                p.m[i] = b1 * p.m[i] + (1.0 - b1) * gi;
                p.v[i] = b2 * p.v[i] + (1.0 - b2) * gi * gi;
                let denom = p.v[i].sqrt() / bc2_sqrt + eps;
                x -= step_size * p.m[i] / denom;
                w[i] = x;
                let d = (x - old) as f64;
                un += d * d;
                pn += (x as f64) * (x as f64);
            }
            p.var.set(
                &Tensor::from_vec(w, p.var.shape(), &Device::Cpu)?.to_device(p.var.device())?,
            )?;
        }
        Ok(StepStats {
            grad_norm,
            param_norm: pn.sqrt(),
            update_norm: un.sqrt(),
        })
    }

    /// Moments as tensors named `m.<param>` / `v.<param>` for `trainer_state/optimizer.safetensors`.
    pub fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for p in &self.params {
            let shape = p.var.shape().clone();
            out.insert(
                format!("m.{}", p.name),
                Tensor::from_slice(&p.m, shape.clone(), &Device::Cpu)?,
            );
            out.insert(
                format!("v.{}", p.name),
                Tensor::from_slice(&p.v, shape, &Device::Cpu)?,
            );
        }
        Ok(out)
    }

    /// Restores moments and the step count saved by [`AdamW::state_tensors`].
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, step: u64) -> Result<()> {
        for p in &mut self.params {
            for (key, dst) in [
                (format!("m.{}", p.name), &mut p.m),
                (format!("v.{}", p.name), &mut p.v),
            ] {
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| TrainError::Resume(format!("optimizer state has no `{key}`")))?;
                let vals: Vec<f32> = t.flatten_all()?.to_vec1()?;
                if vals.len() != dst.len() {
                    return Err(TrainError::Resume(format!(
                        "optimizer state `{key}` has {} values, the model {}",
                        vals.len(),
                        dst.len()
                    )));
                }
                *dst = vals;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's first step moves each coordinate by lr·sign(g) (m̂ = g, v̂ = g²), after the decoupled
    /// decay `w *= 1 - lr·wd` that only matrices get.
    #[test]
    fn first_step_moves_by_lr_times_sign_and_decays_matrices_only() {
        let w = Var::from_tensor(&Tensor::new(&[[1f32, -2.], [3., 0.5]], &Device::Cpu).unwrap())
            .unwrap();
        let b = Var::from_tensor(&Tensor::new(&[0.1f32, -0.2], &Device::Cpu).unwrap()).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("b".to_string(), b.clone());
        vars.insert("w".to_string(), w.clone());
        let mut opt = AdamW::new(
            &vars,
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.1,
            },
        );
        let mut g = Grads(vec![vec![0.05, -0.3], vec![0.3, -0.1, 0.2, 0.4]]);
        let stats = opt.step(&mut g, 0.01, 1e9).unwrap();
        let wv: Vec<f32> = w.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let expect_w = [
            1.0 * (1.0 - 0.001) - 0.01,
            -2.0 * (1.0 - 0.001) + 0.01,
            3.0 * 0.999 - 0.01,
            0.5 * 0.999 - 0.01,
        ];
        for (a, e) in wv.iter().zip(expect_w) {
            assert!((a - e).abs() < 1e-6, "{a} vs {e}");
        }
        let bv: Vec<f32> = b.as_tensor().to_vec1().unwrap();
        assert!(
            (bv[0] - 0.09).abs() < 1e-6 && (bv[1] + 0.19).abs() < 1e-6,
            "{bv:?}"
        );
        let gn = (0.05f64.powi(2) + 0.09 + 0.09 + 0.01 + 0.04 + 0.16).sqrt();
        assert!((stats.grad_norm - gn).abs() < 1e-6);
    }

    #[test]
    fn clipping_scales_to_max_norm_and_state_roundtrips() {
        let w = Var::from_tensor(&Tensor::new(&[0f32, 0.], &Device::Cpu).unwrap()).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("w".to_string(), w.clone());
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut opt = AdamW::new(&vars, cfg);
        let mut g = Grads(vec![vec![30.0, 40.0]]);
        let s = opt.step(&mut g, 0.1, 1.0).unwrap();
        assert!((s.grad_norm - 50.0).abs() < 1e-9);
        let st = opt.state_tensors().unwrap();
        let m: Vec<f32> = st["m.w"].to_vec1().unwrap();
        // clipped grad = (0.6, 0.8); m = 0.1 * g
        assert!(
            (m[0] - 0.06).abs() < 1e-7 && (m[1] - 0.08).abs() < 1e-7,
            "{m:?}"
        );
        let mut opt2 = AdamW::new(&vars, cfg);
        opt2.load_state(&st, 1).unwrap();
        assert_eq!(opt2.step_count(), 1);
        assert_eq!(
            opt2.state_tensors().unwrap()["v.w"]
                .to_vec1::<f32>()
                .unwrap(),
            st["v.w"].to_vec1::<f32>().unwrap()
        );
    }
}
