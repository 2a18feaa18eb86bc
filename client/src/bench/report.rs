//! What a load step reports, as typed structs: `--json` prints them, the plots read them and
//! `benches/results/*.jsonl` keeps them (field names are that files' schema).

use std::collections::BTreeMap;

use serde::Serialize;

/// Latency percentiles, ms.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub(crate) fn of(mut us: Vec<u64>) -> Self {
        us.sort_unstable();
        let at = |q: f64| {
            if us.is_empty() {
                return 0.0;
            }
            let rank = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len());
            us[rank - 1] as f64 / 1000.0
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The server's resident memory around a step, MiB (absent without `--server-pid`).
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct RssMib {
    pub before: Option<f64>,
    pub end: Option<f64>,
}

/// One `--interval` of a step.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TimelinePoint {
    pub t_s: f64,
    pub windows_per_second: f64,
    pub latency_ms: Percentiles,
    pub server_rss_mib: Option<f64>,
}

/// One step: `streams` concurrent streams for the step's duration.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct StepReport {
    pub streams: usize,
    pub connections: usize,
    pub paced: bool,
    pub duration_s: f64,
    pub windows: u64,
    pub lost_windows: u64,
    /// Streams that failed, by gRPC code (or client-side cause).
    pub errors: BTreeMap<String, u64>,
    pub windows_per_second: f64,
    pub audio_seconds_per_second: f64,
    pub latency_ms: Percentiles,
    /// The server's own `latency_us` for the same windows (its clock starts at the
    /// chunk's arrival, ours at its send, so it should read a little lower).
    pub server_latency_ms: Percentiles,
    /// Windows whose server latency exceeded ours: 0 unless the server misattributes.
    pub server_latency_over_client: u64,
    pub server_rss_mib: RssMib,
    /// Cores the server used over the step (with --server-pid), and the load generator.
    pub server_cpu_cores: Option<f64>,
    pub load_generator_cpu_cores: Option<f64>,
    pub timeline: Vec<TimelinePoint>,
}

impl StepReport {
    /// Every window answered, none lost, no error and p99 within the target.
    pub(crate) fn held(&self, target_p99_ms: f64) -> bool {
        self.windows > 0
            && self.lost_windows == 0
            && self.errors.is_empty()
            && self.latency_ms.p99 <= target_p99_ms
    }

    pub(crate) fn text(&self) -> String {
        let l = &self.latency_ms;
        let rss = self
            .server_rss_mib
            .end
            .map_or("?".to_string(), |m| format!("{m:.0}"));
        let cores = |c: Option<f64>| c.map_or("?".to_string(), |c| format!("{c:.2}"));
        format!(
            "{:>6} streams: {} windows ({:.0}/s, {:.1} audio s/s), lost {}, errors {:?}, latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} (server's own p50 {:.1} p99 {:.1}; {} windows above ours), server RSS {rss} MiB, CPU cores: server {}, load generator {}",
            self.streams,
            self.windows,
            self.windows_per_second,
            self.audio_seconds_per_second,
            self.lost_windows,
            self.errors,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.server_latency_ms.p50,
            self.server_latency_ms.p99,
            self.server_latency_over_client,
            cores(self.server_cpu_cores),
            cores(self.load_generator_cpu_cores)
        )
    }
}

/// The last line of `--ramp --json`.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct RampResult {
    pub largest_streams_held: Option<usize>,
    pub target_p99_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct RampLine {
    pub ramp_result: RampResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_in_ms() {
        let p = Percentiles::of((1..=100).map(|i| i * 1000).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(Vec::new()).max, 0.0);
    }
}
