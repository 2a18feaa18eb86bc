//! The `sentio` command line: `features` prints the front end's frames for a file.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sentio::FeatureConfig;
use sentio::audio::{StreamResampler, decode_path};
use sentio::features::{self, FeatureKind};

#[derive(Parser)]
#[command(
    name = "sentio",
    version,
    about = "Streaming speech-emotion recognition"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a feature matrix (features x frames) exactly as Sentio computes it.
    Features(FeaturesArgs),
}

#[derive(Args)]
struct FeaturesArgs {
    /// Audio file (WAV, AIFF, FLAC, Ogg Vorbis, MP3).
    file: PathBuf,
    /// Feature family.
    #[arg(long, value_enum, default_value = "logmel")]
    kind: FeatureKind,
    /// Sample rate to compute at (the file is resampled to it); librosa's default.
    #[arg(long, default_value_t = 22_050)]
    sr: u32,
    /// FFT size (and frame length for ZCR and RMS).
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    /// Hop between frames, in samples.
    #[arg(long, default_value_t = 512)]
    hop_length: usize,
    /// Mel bands.
    #[arg(long, default_value_t = 128)]
    n_mels: usize,
    /// MFCC coefficients.
    #[arg(long, default_value_t = 20)]
    n_mfcc: usize,
    /// Frames start at 0 instead of being centred (librosa's center=False).
    #[arg(long)]
    no_center: bool,
    /// Print one JSON object {"config": ..., "frames": [[...], ...]} instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Features(args) => run_features(args),
    }
}

fn run_features(args: FeaturesArgs) -> anyhow::Result<()> {
    let config = FeatureConfig {
        sr: args.sr,
        n_fft: args.n_fft,
        hop_length: args.hop_length,
        n_mels: args.n_mels,
        n_mfcc: args.n_mfcc,
        center: !args.no_center,
        ..FeatureConfig::default()
    };
    config.validate()?;
    let audio =
        decode_path(&args.file).with_context(|| format!("decoding {}", args.file.display()))?;
    let samples = StreamResampler::resample_all(audio.sample_rate, config.sr, &audio.samples)?;
    let matrix = features::compute(args.kind, &samples, &config)?;
    let rows = matrix.to_rows();
    if args.json {
        let mut config_json = serde_json::to_value(&config)?;
        config_json["fmax"] = serde_json::json!(config.fmax_hz());
        config_json["kind"] = serde_json::to_value(args.kind)?;
        let out = serde_json::json!({ "config": config_json, "frames": rows });
        println!("{out}");
    } else {
        println!(
            "# {:?}: {} features x {} frames at {} Hz",
            args.kind,
            matrix.n_features,
            matrix.n_frames(),
            config.sr
        );
        for row in rows {
            let line: Vec<String> = row.iter().map(|v| format!("{v:.6e}")).collect();
            println!("{}", line.join(" "));
        }
    }
    Ok(())
}
