//! Times one training step of the 2-D CNN (forward, backward, AdamW) on a random batch.
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use sentio::model::architecture::Network;
use sentio::model::cnn2d::{Cnn2dConfig, Cnn2dNet};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let net = Cnn2dNet::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        &Cnn2dConfig::default(),
        8,
    )?;
    let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW::default())?;
    let x = (Tensor::randn(0f32, 10.0, (64, 197, 64), &dev)? - 30.0)?;
    let y = Tensor::new(&[0u32; 64], &dev)?;
    for i in 0..6 {
        let t0 = Instant::now();
        let logits = net.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        opt.step(&grads)?;
        let t3 = Instant::now();
        println!(
            "step {i}: forward {:?} backward {:?} adam {:?}",
            t1 - t0,
            t2 - t1,
            t3 - t2
        );
    }
    Ok(())
}
