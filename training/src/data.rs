//! Finds the clips of the four training corpora (RAVDESS, CREMA-D, TESS, SAVEE) and their
//! labels, from the file names alone, both in the project's Ogg copy and in the official
//! releases' own layouts; and assigns each speaker to train, validation or test through the
//! fixed split in `training/splits.json`, so that no speaker is ever on both sides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sentio::model::LABELS;
use serde::{Deserialize, Serialize};

/// One of the four corpora the models train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dataset {
    Ravdess,
    Crema,
    Tess,
    Savee,
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [
        Dataset::Ravdess,
        Dataset::Crema,
        Dataset::Tess,
        Dataset::Savee,
    ];

    /// The corpus' usual name; also its folder name in the corpus copy and its key in
    /// `splits.json`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Ravdess => "RAVDESS",
            Dataset::Crema => "CREMA-D",
            Dataset::Tess => "TESS",
            Dataset::Savee => "SAVEE",
        }
    }

    /// The corpus' licence, as a model card cites it.
    pub fn license(self) -> &'static str {
        match self {
            Dataset::Ravdess => "CC BY-NC-SA 4.0",
            Dataset::Crema => "ODbL 1.0/DbCL 1.0",
            Dataset::Tess => "CC BY-NC-ND 4.0",
            Dataset::Savee => "research use",
        }
    }

    /// Whether weights trained on it may be used commercially (see NOTICE).
    pub fn allows_commercial_use(self) -> bool {
        self == Dataset::Crema
    }

    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// The licence of weights trained on `datasets`: they follow their training data (NOTICE).
/// Any non-commercial corpus makes the weights non-commercial, under the share-alike terms
/// of RAVDESS, the most permissive compatible with every source.
pub fn weights_license(datasets: &std::collections::BTreeSet<Dataset>) -> String {
    let sources: Vec<String> = datasets
        .iter()
        .map(|d| format!("{} {}", d.name(), d.license()))
        .collect();
    let weights = if datasets.iter().all(|d| d.allows_commercial_use()) {
        "ODbL 1.0/DbCL 1.0, commercial use allowed with attribution"
    } else {
        "CC BY-NC-SA 4.0"
    };
    format!(
        "{weights} (weights trained on {}); code Apache-2.0",
        sources.join(", ")
    )
}

/// One labelled recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub path: PathBuf,
    pub dataset: Dataset,
    /// Dataset-qualified speaker id, e.g. "RAVDESS:07", "CREMA-D:1001", "TESS:OAF", "SAVEE:DC".
    pub speaker: String,
    /// Index into [`LABELS`].
    pub label: usize,
}

/// What a directory scan found: the clips in path order, and how many audio files had a
/// name that did not parse (or a class the models do not use, such as RAVDESS song).
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub clips: Vec<Clip>,
    pub skipped: usize,
}

/// File extensions taken as audio (compared case-insensitively).
const AUDIO_EXTENSIONS: [&str; 5] = ["wav", "ogg", "flac", "aif", "aiff"];

/// Lists every labelled clip of `dataset` under `dir`, recursively, sorted by path.
pub fn scan(dataset: Dataset, dir: &Path) -> anyhow::Result<Scan> {
    if !dir.is_dir() {
        bail!(
            "{} folder {} is not a directory",
            dataset.name(),
            dir.display()
        );
    }
    let mut files = Vec::new();
    collect_audio(dir, &mut files)?;
    files.sort();
    let mut result = Scan::default();
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str());
        let parent = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str());
        match stem.and_then(|stem| parse_stem(dataset, stem, parent)) {
            Some((speaker, label)) => result.clips.push(Clip {
                speaker: speaker_key(dataset, &speaker),
                path,
                dataset,
                label,
            }),
            None => result.skipped += 1,
        }
    }
    Ok(result)
}

fn collect_audio(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Hidden entries and macOS zip debris ("._x.wav" resource forks) are never audio.
        if name.starts_with('.') || name == "__MACOSX" {
            continue;
        }
        if path.is_dir() {
            collect_audio(&path, out)?;
        } else if is_audio(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| e.eq_ignore_ascii_case(a)))
}

/// Parses a file stem (and, for SAVEE's official `AudioData/DC/a01.wav` layout, the name of
/// the folder holding it) into a normalised speaker id without dataset prefix and a label.
/// `None` for names that do not parse and for classes the models do not use.
pub fn parse_stem(
    dataset: Dataset,
    stem: &str,
    parent_dir_name: Option<&str>,
) -> Option<(String, usize)> {
    match dataset {
        Dataset::Ravdess => parse_ravdess(stem),
        Dataset::Crema => parse_crema(stem),
        Dataset::Tess => parse_tess(stem),
        Dataset::Savee => parse_savee(stem, parent_dir_name),
    }
}

fn label_index(name: &str) -> Option<usize> {
    LABELS.iter().position(|&l| l == name)
}

/// The label of `key` (case-insensitive) in a "key:label key:label ..." table.
fn lookup(table: &str, key: &str) -> Option<usize> {
    let (_, name) = table
        .split_whitespace()
        .filter_map(|pair| pair.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case(key))?;
    label_index(name)
}

fn speaker_key(dataset: Dataset, id: &str) -> String {
    format!("{}:{id}", dataset.name())
}

/// `MM-VV-EE-II-SS-RR-AA`: modality, vocal channel, emotion, intensity, statement,
/// repetition, actor. Only modality 03 (audio-only) and channel 01 (speech) are used.
fn parse_ravdess(stem: &str) -> Option<(String, usize)> {
    const EMOTIONS: [&str; 8] = [
        "neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise",
    ];
    let fields: Vec<u32> = stem
        .split('-')
        .map(|f| (f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit())).then(|| f.parse().ok())?)
        .collect::<Option<_>>()?;
    let [modality, channel, emotion, _, _, _, actor] = fields[..] else {
        return None;
    };
    if modality != 3 || channel != 1 || actor == 0 {
        return None;
    }
    let label = label_index(EMOTIONS.get((emotion as usize).checked_sub(1)?)?)?;
    Some((format!("{actor:02}"), label))
}

/// `AAAA_SSS_EMO_LVL`: actor, sentence, emotion, intensity.
fn parse_crema(stem: &str) -> Option<(String, usize)> {
    let fields: Vec<&str> = stem.split('_').collect();
    let [actor, sentence, emotion, level] = fields[..] else {
        return None;
    };
    if sentence.is_empty() || level.is_empty() {
        return None;
    }
    let codes = "ang:angry dis:disgust fea:fear hap:happy neu:neutral sad:sad";
    Some((normalise_number(actor, 4)?, lookup(codes, emotion)?))
}

/// `<OAF|YAF>_<word>_<emotion>`; one official stem starts with the typo `OA_`.
fn parse_tess(stem: &str) -> Option<(String, usize)> {
    let tokens: Vec<&str> = stem.split('_').collect();
    if tokens.len() < 3 || tokens[1..tokens.len() - 1].iter().any(|t| t.is_empty()) {
        return None;
    }
    let words = "angry:angry disgust:disgust fear:fear happy:happy neutral:neutral sad:sad \
                 ps:surprise surprise:surprise surprised:surprise";
    let label = lookup(words, tokens[tokens.len() - 1])?;
    Some((normalise_speaker(Dataset::Tess, tokens[0])?, label))
}

/// `<SPK>_<code><NN>` (flat copies) or `<code><NN>` inside a folder named after the speaker
/// (the official `AudioData/<SPK>/` layout).
fn parse_savee(stem: &str, parent_dir_name: Option<&str>) -> Option<(String, usize)> {
    let (speaker, rest) = match stem.split_once('_') {
        Some((speaker, rest)) => (speaker, rest),
        None => (parent_dir_name?, stem),
    };
    let speaker = normalise_speaker(Dataset::Savee, speaker)?;
    let digits_at = rest.find(|c: char| c.is_ascii_digit())?;
    let (code, number) = rest.split_at(digits_at);
    if number.is_empty() || number.len() > 2 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let codes = "a:angry d:disgust f:fear h:happy n:neutral sa:sad su:surprise";
    Some((speaker, lookup(codes, code)?))
}

/// A positive decimal id, zero-padded to `width` digits ("7" -> "07").
fn normalise_number(raw: &str, width: usize) -> Option<String> {
    if raw.is_empty() || raw.len() > width || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = raw.parse().ok()?;
    (n > 0).then(|| format!("{n:0width$}"))
}

/// The canonical form of a speaker id, as the stems and `splits.json` write it.
fn normalise_speaker(dataset: Dataset, raw: &str) -> Option<String> {
    match dataset {
        Dataset::Ravdess => normalise_number(raw, 2),
        Dataset::Crema => normalise_number(raw, 4),
        Dataset::Tess => match raw.to_ascii_uppercase().as_str() {
            "OAF" | "OA" => Some("OAF".into()),
            "YAF" => Some("YAF".into()),
            _ => None,
        },
        // Initials only: this also rejects folder names such as "AudioData".
        Dataset::Savee => ((2..=3).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| raw.to_ascii_uppercase()),
    }
}

/// Which part of the data a speaker belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Split {
    Train,
    Val,
    Test,
}

#[derive(Debug, Default, Deserialize)]
struct Held {
    test: Vec<String>,
    #[serde(default)]
    val: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SplitFile {
    #[allow(dead_code)] // Documentation for people reading the file.
    note: String,
    datasets: BTreeMap<String, Held>,
}

/// The fixed speaker-independent split: test and validation speakers per dataset; every
/// other speaker (including ones this copy of the corpus lacks) is train.
#[derive(Clone, Debug)]
pub struct SpeakerSplit {
    /// Normalised speaker ids (no dataset prefix), sorted.
    held: BTreeMap<Dataset, (Vec<String>, Vec<String>)>,
}

impl SpeakerSplit {
    /// The split in `training/splits.json`, compiled in so that every run uses the same one.
    pub fn embedded() -> Self {
        Self::from_json(include_str!("../splits.json"))
            .expect("training/splits.json is valid (checked by the data tests)")
    }

    /// Parses and checks a split file: known datasets, valid speaker ids, no speaker twice.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let file: SplitFile = serde_json::from_str(text).context("parsing the split file")?;
        let mut held = BTreeMap::new();
        for (name, lists) in file.datasets {
            let dataset =
                Dataset::from_name(&name).with_context(|| format!("unknown dataset {name}"))?;
            let normalise = |ids: &[String]| -> anyhow::Result<Vec<String>> {
                let mut out = ids
                    .iter()
                    .map(|id| {
                        normalise_speaker(dataset, id)
                            .with_context(|| format!("bad {name} speaker id {id:?}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                out.sort();
                if out.windows(2).any(|w| w[0] == w[1]) {
                    bail!("a {name} speaker is listed twice");
                }
                Ok(out)
            };
            let (test, val) = (normalise(&lists.test)?, normalise(&lists.val)?);
            if let Some(both) = test.iter().find(|id| val.contains(id)) {
                bail!("{name} speaker {both} is in both test and val");
            }
            held.insert(dataset, (test, val));
        }
        Ok(Self { held })
    }

    /// The split of the clip's speaker.
    pub fn split_of(&self, clip: &Clip) -> Split {
        let id = clip
            .speaker
            .strip_prefix(clip.dataset.name())
            .and_then(|s| s.strip_prefix(':'))
            .unwrap_or(&clip.speaker);
        match self.held.get(&clip.dataset) {
            Some((test, _)) if test.iter().any(|s| s == id) => Split::Test,
            Some((_, val)) if val.iter().any(|s| s == id) => Split::Val,
            _ => Split::Train,
        }
    }

    /// The listed speakers of one split, dataset-qualified like [`Clip::speaker`]
    /// ("RAVDESS:17"). Train is open-ended (everyone not listed), so it returns an empty
    /// list; use [`SpeakerSplit::speakers_in`] to list the train speakers of a scan.
    pub fn speakers(&self, dataset: Dataset, split: Split) -> Vec<String> {
        let Some((test, val)) = self.held.get(&dataset) else {
            return Vec::new();
        };
        let ids = match split {
            Split::Train => return Vec::new(),
            Split::Val => val,
            Split::Test => test,
        };
        ids.iter().map(|id| speaker_key(dataset, id)).collect()
    }

    /// The distinct speakers of `clips` that fall in `split`, sorted.
    pub fn speakers_in(&self, clips: &[Clip], split: Split) -> Vec<String> {
        let mut out: Vec<String> = clips
            .iter()
            .filter(|c| self.split_of(c) == split)
            .map(|c| c.speaker.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
