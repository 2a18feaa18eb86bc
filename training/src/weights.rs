//! A network's variables as values: seeded initialization, snapshots of the best epoch,
//! and the running average of the last epochs' weights.

use std::collections::HashMap;

use anyhow::Result;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// Re-initializes every variable from a seeded generator (candle's CPU RNG cannot be
/// seeded): He-normal weights, zero biases, unit batch-norm scale and variance.
pub fn init_vars(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = StdRng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let values: Vec<f32> = if name.ends_with("running_var")
            || (name.contains(".bn.") && name.ends_with("weight"))
        {
            vec![1.0; n]
        } else if shape.rank() >= 2 {
            let fan_in: usize = shape.dims()[1..].iter().product();
            let normal = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt())?;
            (0..n).map(|_| normal.sample(&mut rng)).collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?)?;
    }
    Ok(())
}

/// A copy of every variable's current value, by name.
pub fn snapshot(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap.data().lock().expect("varmap lock");
    Ok(data
        .iter()
        .map(|(k, v): (&String, &Var)| (k.clone(), v.as_tensor().copy().expect("copy")))
        .collect())
}

/// A running sum of weight snapshots (`Recipe::average_last_epochs`).
#[derive(Default)]
pub struct WeightAverage {
    sum: HashMap<String, Tensor>,
    count: usize,
}

impl WeightAverage {
    pub fn add(&mut self, weights: &HashMap<String, Tensor>) -> Result<()> {
        for (name, tensor) in weights {
            let total = match self.sum.remove(name) {
                Some(total) => (total + tensor)?,
                None => tensor.clone(),
            };
            self.sum.insert(name.clone(), total);
        }
        self.count += 1;
        Ok(())
    }

    pub fn mean(&self) -> Result<Option<HashMap<String, Tensor>>> {
        if self.count == 0 {
            return Ok(None);
        }
        let scale = 1.0 / self.count as f64;
        let mut mean = HashMap::new();
        for (name, total) in &self.sum {
            mean.insert(name.clone(), total.affine(scale, 0.0)?);
        }
        Ok(Some(mean))
    }
}

/// Sets every variable to its value in `tensors` (from [`snapshot`] or an average).
pub fn restore(varmap: &VarMap, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        var.set(&tensors[name])?;
    }
    Ok(())
}
