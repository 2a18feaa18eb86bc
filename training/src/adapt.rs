//! Speaker adaptation in training (`Recipe::speaker_adaptation`): each training window is
//! read against a profile of its speaker, as a stream reads its windows against the call so
//! far (`sentio::features::adaptation`). A call's profile may hold anything from no earlier
//! speech to minutes of it, so each draw builds one from a random number of the speaker's
//! other clips, in the same augmentation variant (the same line and voice), plus the window
//! itself.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use sentio::features::AdaptationConfig;
use sentio::features::adaptation::band_mean;
use sentio::model::Recipe;

use crate::cache::CachedClip;
use crate::data::Clip;

/// What the windows of each training clip are read against.
pub struct SpeakerWindows {
    pub config: AdaptationConfig,
    n_mels: usize,
    /// Per clip and variant: the mean band spectrum of its server windows, and how many.
    clip_means: Vec<Vec<(Vec<f32>, usize)>>,
    /// Per clip, the other clips of its speaker, and those of them with its label.
    same_speaker: Vec<Vec<usize>>,
    same_emotion: Vec<Vec<usize>>,
    max_clips: usize,
    alone_prob: f64,
    same_emotion_prob: f64,
}

/// Mean band spectrum of a clip's windows (each clamped as served) and their number.
fn clip_mean(clip: &CachedClip, n_mels: usize) -> (Vec<f32>, usize) {
    let mut sum = vec![0.0f32; n_mels];
    for w in &clip.windows {
        sum.iter_mut()
            .zip(band_mean(&w.values, n_mels))
            .for_each(|(s, m)| *s += m);
    }
    let n = clip.windows.len();
    sum.iter_mut().for_each(|s| *s /= n.max(1) as f32);
    (sum, n)
}

impl SpeakerWindows {
    /// `cache[c]` holds clip `c`'s variants; the prior is the mean over the original
    /// variant's windows. The recipe's `adaptation_*` fields say how histories are drawn.
    pub fn new(clips: &[Clip], cache: &[Vec<CachedClip>], n_mels: usize, recipe: &Recipe) -> Self {
        let clip_means: Vec<Vec<(Vec<f32>, usize)>> = cache
            .iter()
            .map(|variants| variants.iter().map(|v| clip_mean(v, n_mels)).collect())
            .collect();
        let mut prior = vec![0.0f64; n_mels];
        let mut windows = 0usize;
        for variants in &clip_means {
            let (mean, n) = &variants[0];
            prior
                .iter_mut()
                .zip(mean)
                .for_each(|(p, &m)| *p += m as f64 * *n as f64);
            windows += n;
        }
        let prior = prior
            .iter()
            .map(|p| (p / windows.max(1) as f64) as f32)
            .collect();
        let mut by_speaker = std::collections::HashMap::<&str, Vec<usize>>::new();
        for (i, c) in clips.iter().enumerate() {
            by_speaker.entry(&c.speaker).or_default().push(i);
        }
        let same_speaker: Vec<Vec<usize>> = (0..clips.len())
            .map(|i| {
                let all = &by_speaker[clips[i].speaker.as_str()];
                all.iter().copied().filter(|&j| j != i).collect()
            })
            .collect();
        let same_emotion = same_speaker
            .iter()
            .enumerate()
            .map(|(i, others)| {
                let label = clips[i].label;
                others
                    .iter()
                    .copied()
                    .filter(|&j| clips[j].label == label)
                    .collect()
            })
            .collect();
        Self {
            config: AdaptationConfig {
                prior,
                prior_windows: recipe.adaptation_prior_windows,
            },
            n_mels,
            clip_means,
            same_speaker,
            same_emotion,
            max_clips: recipe.adaptation_max_clips,
            alone_prob: recipe.adaptation_alone_prob,
            same_emotion_prob: recipe.adaptation_same_emotion_prob,
        }
    }

    /// Earlier speech of the call that `clip` (in `variant`) belongs to: the mean spectrum
    /// of 0 to `max_clips` random other clips of its speaker (with probability
    /// `same_emotion_prob`, of its emotion only) and their window count, or `None` when none
    /// was drawn (always, with probability `alone_prob`).
    pub fn earlier_speech(
        &self,
        clip: usize,
        variant: usize,
        rng: &mut StdRng,
    ) -> Option<(Vec<f32>, usize)> {
        if self.alone_prob > 0.0 && rng.random_bool(self.alone_prob) {
            return None;
        }
        let same_emotion = self.same_emotion_prob > 0.0 && rng.random_bool(self.same_emotion_prob);
        let others = if same_emotion {
            &self.same_emotion[clip]
        } else {
            &self.same_speaker[clip]
        };
        let k = rng.random_range(0..=others.len().min(self.max_clips));
        let mut sum = vec![0.0f32; self.n_mels];
        let mut windows = 0usize;
        for &j in others.choose_multiple(rng, k) {
            let (mean, n) = &self.clip_means[j][variant.min(self.clip_means[j].len() - 1)];
            sum.iter_mut()
                .zip(mean)
                .for_each(|(s, &m)| *s += m * *n as f32);
            windows += n;
        }
        (windows > 0).then(|| {
            sum.iter_mut().for_each(|s| *s /= windows as f32);
            (sum, windows)
        })
    }

    /// Reads `window` against its call: `earlier` (from [`Self::earlier_speech`], with the
    /// window's own feature-space augmentations applied) and the window itself, as
    /// `SpeakerProfile::adapt` does.
    pub fn adapt(&self, window: &mut [f32], earlier: Option<(Vec<f32>, usize)>) {
        let own = band_mean(window, self.n_mels);
        let (mean, windows) = match earlier {
            Some((mean, n)) => {
                let total = n as f32 + 1.0;
                let mixed = mean
                    .iter()
                    .zip(&own)
                    .map(|(&m, &o)| (m * n as f32 + o) / total)
                    .collect();
                (mixed, total)
            }
            None => (own, 1.0),
        };
        let offset = self.config.offset(&mean, windows);
        for frame in window.chunks_exact_mut(self.n_mels) {
            frame.iter_mut().zip(&offset).for_each(|(v, o)| *v -= o);
        }
    }
}

/// Validation windows read as calls: each speaker's clips in a seeded random order, one
/// running profile per speaker, as `evaluate_calls` scores test speakers.
pub fn adapt_as_calls(
    config: &AdaptationConfig,
    clips: &[Clip],
    cached: &[&CachedClip],
    seed: u64,
) -> Vec<CachedClip> {
    let mut out: Vec<CachedClip> = cached.iter().map(|&c| c.clone()).collect();
    for order in call_orders(clips, seed) {
        let mut profile = sentio::features::SpeakerProfile::new(config);
        for i in order {
            for w in &mut out[i].windows {
                profile.adapt(&mut w.values);
            }
        }
    }
    out
}

/// Each speaker's clip indices in a random order fixed by `seed` (speakers in first-seen
/// order): the calls of the call-level protocol.
pub fn call_orders(clips: &[Clip], seed: u64) -> Vec<Vec<usize>> {
    calls_by(clips, seed, |c| c.speaker.clone())
}

/// Calls that hold one emotion each: a speaker's clips of one label, in a random order. A
/// caller who stays angry has an angry profile; this is the hard case for adaptation (the
/// acted corpora mix every emotion within a speaker, real calls less so).
pub fn single_emotion_call_orders(clips: &[Clip], seed: u64) -> Vec<Vec<usize>> {
    calls_by(clips, seed, |c| format!("{}/{}", c.speaker, c.label))
}

fn calls_by(clips: &[Clip], seed: u64, key: impl Fn(&Clip) -> String) -> Vec<Vec<usize>> {
    use rand::SeedableRng;
    let mut keys: Vec<String> = Vec::new();
    let mut orders: Vec<Vec<usize>> = Vec::new();
    for (i, c) in clips.iter().enumerate() {
        let k = key(c);
        match keys.iter().position(|s| *s == k) {
            Some(n) => orders[n].push(i),
            None => {
                keys.push(k);
                orders.push(vec![i]);
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    orders.iter_mut().for_each(|o| o.shuffle(&mut rng));
    orders
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use sentio::features::SpeakerProfile;
    use sentio::model::WindowInput;

    use super::*;
    use crate::data::Dataset;

    fn clip(speaker: &str) -> Clip {
        labelled(speaker, 0)
    }

    fn labelled(speaker: &str, label: usize) -> Clip {
        Clip {
            path: "x.ogg".into(),
            dataset: Dataset::Crema,
            speaker: speaker.into(),
            label,
        }
    }

    fn recipe(same_emotion_prob: f64) -> Recipe {
        Recipe {
            adaptation_prior_windows: 4.0,
            adaptation_max_clips: 30,
            adaptation_same_emotion_prob: same_emotion_prob,
            ..Recipe::default()
        }
    }

    /// Clip i's frames all sit at -(10 i) dB in both bands, so a profile's mean names the
    /// clips it was made of.
    fn cached(level: f32) -> CachedClip {
        let values = vec![level; 2 * 3];
        CachedClip {
            frames: 3,
            logmel_db: values.clone(),
            windows: vec![WindowInput { frames: 3, values }],
        }
    }

    #[test]
    fn a_profile_is_made_of_the_same_speakers_other_clips_only() {
        let clips = [clip("a"), clip("b"), clip("a"), clip("a"), clip("b")];
        let cache: Vec<Vec<CachedClip>> = (0..clips.len())
            .map(|i| vec![cached(-10.0 * i as f32)])
            .collect();
        let speakers = SpeakerWindows::new(&clips, &cache, 2, &recipe(0.0));
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            if let Some((mean, n)) = speakers.earlier_speech(0, 0, &mut rng) {
                // Clips 2 and 3 (-20 and -30 dB), never 0 itself or speaker b's.
                assert!(n == 1 || n == 2, "{n}");
                assert!([-20.0, -25.0, -30.0].contains(&mean[0]), "{mean:?}");
            }
        }
        // The prior is the mean over every window: -20 dB.
        assert_eq!(speakers.config.prior, vec![-20.0, -20.0]);
    }

    #[test]
    fn a_window_without_earlier_speech_is_read_as_a_stream_reads_its_first() {
        let clips = [clip("a"), clip("a")];
        let cache = vec![vec![cached(-10.0)], vec![cached(-30.0)]];
        let speakers = SpeakerWindows::new(&clips, &cache, 2, &recipe(0.0));
        let mut window = vec![-12.0, -8.0, -12.0, -8.0];
        let mut served = window.clone();
        speakers.adapt(&mut window, None);
        SpeakerProfile::new(&speakers.config).adapt(&mut served);
        assert_eq!(window, served);
    }

    #[test]
    fn same_emotion_histories_hold_only_the_speakers_clips_of_that_emotion() {
        let clips = [
            labelled("a", 1),
            labelled("a", 2),
            labelled("a", 1),
            labelled("b", 1),
            labelled("a", 2),
        ];
        let cache: Vec<Vec<CachedClip>> = (0..clips.len())
            .map(|i| vec![cached(-10.0 * i as f32)])
            .collect();
        let speakers = SpeakerWindows::new(&clips, &cache, 2, &recipe(1.0));
        let mut rng = StdRng::seed_from_u64(4);
        let mut drawn = 0;
        for _ in 0..50 {
            if let Some((mean, n)) = speakers.earlier_speech(0, 0, &mut rng) {
                // Only clip 2 (-20 dB): speaker a, label 1, not clip 0 itself.
                assert_eq!((mean[0], n), (-20.0, 1));
                drawn += 1;
            }
        }
        assert!(drawn > 0);
    }

    #[test]
    fn each_call_is_one_speakers_clips_once() {
        let clips = [clip("a"), clip("b"), clip("a"), clip("c"), clip("b")];
        let orders = call_orders(&clips, 9);
        assert_eq!(orders.len(), 3);
        let mut all: Vec<usize> = orders.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        for order in &orders {
            assert!(
                order
                    .iter()
                    .all(|&i| clips[i].speaker == clips[order[0]].speaker)
            );
        }
    }
}
