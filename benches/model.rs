//! The model's batched forward pass on CPU: windows per second for batch 1..256 (the shipped
//! model, or the model directory in `SENTIO_BENCH_MODEL`, on real 2 s speech windows), and
//! at batch 8 (one pass) on the same speech through an 8 kHz line and on passes that mix
//! the two (a `by_band` model splits those between its members).
//! GFLOP/s = windows/s x FLOP per window (the card's `training.mflop_per_window`, or
//! BENCHMARKS.md's arithmetic).

use candle_core::Device;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sentio::audio::{StreamResampler, decode_path};
use sentio::model::Model;

// The server's allocator (see src/main.rs), so these figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn forward(c: &mut Criterion) {
    let model = match std::env::var_os("SENTIO_BENCH_MODEL") {
        Some(dir) => Model::load_dir(std::path::Path::new(&dir), &Device::Cpu).unwrap(),
        None => Model::default_model(&Device::Cpu).unwrap(),
    };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech_long_16k.wav");
    let audio = decode_path(&path).unwrap();
    let window = model.window_input(&audio.samples[..32_000]).unwrap();
    let mut group = c.benchmark_group(format!("{}_forward", model.card.kind()));
    for batch in [1usize, 8, 32, 64, 128, 256] {
        let inputs = vec![&window; batch];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &inputs, |b, inputs| {
            b.iter(|| model.predict(inputs).unwrap())
        });
    }
    group.finish();
    let line = StreamResampler::resample_all(16_000, 8_000, &audio.samples[..32_000]).unwrap();
    let mut narrow = StreamResampler::resample_all(8_000, 16_000, &line).unwrap();
    narrow.resize(32_000, 0.0);
    let phone = model.window_input(&narrow).unwrap();
    let mut group = c.benchmark_group(format!("{}_forward_by_line", model.card.kind()));
    group.throughput(Throughput::Elements(8));
    for (name, narrow_share) in [("wideband", 0), ("narrowband", 8), ("mixed", 4)] {
        let inputs: Vec<_> = (0..8)
            .map(|i| {
                if i % 8 < narrow_share {
                    &phone
                } else {
                    &window
                }
            })
            .collect();
        group.bench_function(name, |b| b.iter(|| model.predict(&inputs).unwrap()));
    }
    group.finish();
}

/// The machine's fp32 GEMM rate through the same library (candle's CPU matmul), the
/// reference for the model's achieved GFLOP/s: 2 * 1024^3 FLOP per iteration.
fn gemm_peak(c: &mut Criterion) {
    let a = candle_core::Tensor::randn(0f32, 1.0, (1024, 1024), &Device::Cpu).unwrap();
    let b = candle_core::Tensor::randn(0f32, 1.0, (1024, 1024), &Device::Cpu).unwrap();
    c.bench_function("gemm_f32_1024", |bench| {
        bench.iter(|| a.matmul(&b).unwrap())
    });
}

criterion_group!(benches, forward, gemm_peak);
criterion_main!(benches);
