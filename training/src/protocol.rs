//! Evaluation protocols: which clips train, which pick the epoch (validation) and which are
//! scored (test). Every protocol splits by speaker, never by clip.
//!
//! - `split`: the fixed speaker split of `training/splits.json`.
//! - `folds`: grouped k-fold over speakers. Each corpus' speakers are dealt round-robin, in a
//!   seeded order, into k folds; fold i is the test set, fold i+1 the validation set, the
//!   rest train. TESS has two speakers, so with k > 2 it is absent from some test folds.
//! - `loco`: leave one corpus out. Train and validate on three corpora (the fixed split's
//!   validation speakers of those corpora pick the epoch), test on every clip of the
//!   fourth: the closest stand-in for recordings the model never heard.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::{Clip, Dataset, SpeakerSplit, Split};

/// The clips of one train / validation / test partition.
#[derive(Clone, Debug, Default)]
pub struct Partition {
    /// What the partition is, e.g. "fold 2 of 5, draw seed 7" or "test corpus SAVEE".
    pub name: String,
    pub train: Vec<Clip>,
    pub val: Vec<Clip>,
    pub test: Vec<Clip>,
}

/// Which protocol to run (`sentio-train --protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// The fixed speaker split (what ships).
    Split,
    /// Grouped k-fold over speakers.
    Folds,
    /// Leave one corpus out.
    Loco,
    /// The fixed split with its validation speakers moved into training, trained for the
    /// recipe's epochs and the last epoch kept: the final fit of a recipe (and epoch count)
    /// already chosen on `split`'s validation speakers. Test speakers stay out.
    Refit,
}

/// The fixed split.
pub fn fixed(clips: &[Clip], split: &SpeakerSplit) -> Partition {
    let pick = |s: Split| -> Vec<Clip> {
        clips
            .iter()
            .filter(|c| split.split_of(c) == s)
            .cloned()
            .collect()
    };
    Partition {
        name: "fixed speaker split".into(),
        train: pick(Split::Train),
        val: pick(Split::Val),
        test: pick(Split::Test),
    }
}

/// The fixed split with the validation speakers in training and no validation set.
pub fn refit(fixed: &Partition) -> Partition {
    let mut train = fixed.train.clone();
    train.extend(fixed.val.iter().cloned());
    Partition {
        name: "fixed split, validation speakers refit into training".into(),
        train,
        val: Vec::new(),
        test: fixed.test.clone(),
    }
}

/// Each corpus' speakers dealt into `k` folds in a seeded order.
pub fn speaker_folds(clips: &[Clip], k: usize, seed: u64) -> BTreeMap<String, usize> {
    let mut by_corpus: BTreeMap<Dataset, Vec<String>> = BTreeMap::new();
    for clip in clips {
        let speakers = by_corpus.entry(clip.dataset).or_default();
        if !speakers.contains(&clip.speaker) {
            speakers.push(clip.speaker.clone());
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = BTreeMap::new();
    let mut next = 0usize;
    for speakers in by_corpus.values_mut() {
        speakers.sort();
        speakers.shuffle(&mut rng);
        for speaker in speakers.iter() {
            fold_of.insert(speaker.clone(), next % k.max(1));
            next += 1;
        }
    }
    fold_of
}

/// Grouped k-fold: partition `i` tests fold i and validates on fold i + 1. The name holds the
/// draw's seed, so a card says which folds it was trained on.
pub fn folds(clips: &[Clip], k: usize, seed: u64) -> Vec<Partition> {
    let k = k.max(3);
    let fold_of = speaker_folds(clips, k, seed);
    (0..k)
        .map(|i| {
            let mut p = Partition {
                name: format!("fold {} of {k}, draw seed {seed}", i + 1),
                ..Partition::default()
            };
            for clip in clips {
                let fold = fold_of[&clip.speaker];
                if fold == i {
                    p.test.push(clip.clone());
                } else if fold == (i + 1) % k {
                    p.val.push(clip.clone());
                } else {
                    p.train.push(clip.clone());
                }
            }
            p
        })
        .collect()
}

/// Leave one corpus out, for each corpus present.
pub fn leave_one_corpus_out(clips: &[Clip], split: &SpeakerSplit) -> Vec<Partition> {
    Dataset::ALL
        .into_iter()
        .filter(|d| clips.iter().any(|c| c.dataset == *d))
        .map(|held_out| {
            let mut p = Partition {
                name: format!("test corpus {}", held_out.name()),
                ..Partition::default()
            };
            for clip in clips {
                if clip.dataset == held_out {
                    p.test.push(clip.clone());
                } else if split.split_of(clip) == Split::Val {
                    p.val.push(clip.clone());
                } else {
                    p.train.push(clip.clone());
                }
            }
            p
        })
        .collect()
}

/// Keeps an even spread of at most `limit` clips per corpus in each part (smoke runs).
pub fn limit(mut p: Partition, limit: Option<usize>) -> Partition {
    let Some(limit) = limit else {
        return p;
    };
    let thin = |clips: Vec<Clip>| -> Vec<Clip> {
        let mut out = Vec::new();
        for dataset in Dataset::ALL {
            let of: Vec<Clip> = clips
                .iter()
                .filter(|c| c.dataset == dataset)
                .cloned()
                .collect();
            let step = of.len().div_ceil(limit.max(1)).max(1);
            out.extend(of.into_iter().step_by(step));
        }
        out
    };
    p.train = thin(p.train);
    p.val = thin(p.val);
    p.test = thin(p.test);
    p
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn clips() -> Vec<Clip> {
        let mut out = Vec::new();
        let speakers: [(Dataset, Vec<String>); 4] = [
            (
                Dataset::Ravdess,
                (1..=20).map(|a| format!("{a:02}")).collect(),
            ),
            (
                Dataset::Crema,
                (1001..=1030).map(|a| a.to_string()).collect(),
            ),
            (Dataset::Tess, vec!["OAF".into(), "YAF".into()]),
            (Dataset::Savee, vec!["DC".into(), "JE".into(), "JK".into()]),
        ];
        for (dataset, ids) in speakers {
            for id in ids {
                for label in 0..8 {
                    out.push(Clip {
                        path: format!("{id}-{label}.ogg").into(),
                        dataset,
                        speaker: format!("{}:{id}", dataset.name()),
                        label,
                    });
                }
            }
        }
        out
    }

    fn speakers(clips: &[Clip]) -> BTreeSet<&str> {
        clips.iter().map(|c| c.speaker.as_str()).collect()
    }

    fn assert_disjoint(p: &Partition) {
        let (train, val, test) = (speakers(&p.train), speakers(&p.val), speakers(&p.test));
        assert!(
            train.is_disjoint(&test),
            "{}: train and test share a speaker",
            p.name
        );
        assert!(
            train.is_disjoint(&val),
            "{}: train and validation share a speaker",
            p.name
        );
        assert!(
            val.is_disjoint(&test),
            "{}: validation and test share a speaker",
            p.name
        );
    }

    #[test]
    fn folds_never_share_a_speaker_and_test_every_speaker_once() {
        let clips = clips();
        let parts = folds(&clips, 5, 11);
        assert_eq!(parts.len(), 5);
        let mut tested = BTreeSet::new();
        for p in &parts {
            assert_disjoint(p);
            assert_eq!(p.train.len() + p.val.len() + p.test.len(), clips.len());
            for s in speakers(&p.test) {
                assert!(tested.insert(s.to_string()), "{s} tested twice");
            }
        }
        assert_eq!(tested.len(), speakers(&clips).len());
        // Seeded: the same seed deals the same folds, another seed other folds.
        assert_eq!(speaker_folds(&clips, 5, 11), speaker_folds(&clips, 5, 11));
        assert_ne!(speaker_folds(&clips, 5, 11), speaker_folds(&clips, 5, 12));
        assert!(parts[0].name.ends_with("draw seed 11"), "{}", parts[0].name);
    }

    #[test]
    fn leave_one_corpus_out_tests_exactly_the_held_out_corpus() {
        let clips = clips();
        let parts = leave_one_corpus_out(&clips, &SpeakerSplit::embedded());
        assert_eq!(parts.len(), 4);
        for (p, held_out) in parts.iter().zip(Dataset::ALL) {
            assert_disjoint(p);
            assert!(p.test.iter().all(|c| c.dataset == held_out));
            assert_eq!(
                p.test.len(),
                clips.iter().filter(|c| c.dataset == held_out).count()
            );
            assert!(p.train.iter().chain(&p.val).all(|c| c.dataset != held_out));
            assert!(!p.val.is_empty());
        }
    }

    #[test]
    fn a_refit_trains_on_validation_speakers_and_never_on_test_speakers() {
        let clips = clips();
        let fixed = fixed(&clips, &SpeakerSplit::embedded());
        let refit = refit(&fixed);
        assert!(refit.val.is_empty());
        assert_eq!(refit.train.len(), fixed.train.len() + fixed.val.len());
        let test = speakers(&refit.test);
        assert!(speakers(&refit.train).is_disjoint(&test));
    }

    #[test]
    fn the_fixed_split_never_shares_a_speaker() {
        assert_disjoint(&fixed(&clips(), &SpeakerSplit::embedded()));
    }
}
