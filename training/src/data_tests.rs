//! Tests of `data.rs`.
use super::*;
use Dataset::*;

fn label(name: &str) -> usize {
    label_index(name).expect("a label")
}

/// dataset, stem, parent folder ("-": none), then speaker and label, or "-" if skipped.
const STEMS: &str = "
    RAVDESS 03-01-06-01-02-01-07 -        07  fear
    RAVDESS 03-01-08-02-01-02-24 Actor_24 24  surprise
    RAVDESS 03-02-01-01-01-01-01 Actor_01 -
    RAVDESS 01-01-01-01-01-01-01 -        -
    RAVDESS 03-01-09-01-01-01-01 -        -
    RAVDESS 03-01-01-01-01-01    -        -
    RAVDESS 3-1-1-1-1-1-1        -        -
    CREMA-D 1001_DFA_ANG_XX      AudioWAV 1001 angry
    CREMA-D 1091_ieo_sad_hi      -        1091 sad
    CREMA-D 1001_DFA_XXX_XX      -        -
    CREMA-D abcd_DFA_ANG_XX      -        -
    CREMA-D 1001_DFA_ANG         -        -
    TESS    OAF_back_angry       OAF_angry OAF angry
    TESS    OA_bite_neutral      OAF_neutral OAF neutral
    TESS    YAF_back_ps          YAF_pleasant_surprised YAF surprise
    TESS    yaf_back_Fear        -        YAF fear
    TESS    OAF_angry            -        -
    TESS    MAF_back_angry       -        -
    TESS    OAF_back_bored       -        -
    SAVEE   DC_a01               SAVEE    DC  angry
    SAVEE   JK_sa15              -        JK  sad
    SAVEE   su03                 KL       KL  surprise
    SAVEE   n30                  je       JE  neutral
    SAVEE   a01                  AudioData -
    SAVEE   a01                  -        -
    SAVEE   DC_x01               -        -
    SAVEE   DC_a                 -        -
    SAVEE   DC_a001              -        -";

#[test]
fn parses_and_rejects_stems() {
    for line in STEMS.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let dataset = Dataset::from_name(f[0]).expect("a dataset");
        let parent = (f[2] != "-").then_some(f[2]);
        let want = (f[3] != "-").then(|| (f[3].to_string(), label(f[4])));
        assert_eq!(parse_stem(dataset, f[1], parent), want, "{line}");
    }
}

#[test]
fn scan_reads_official_layouts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = [
        "RAVDESS/Actor_02/03-01-03-01-01-01-02.wav",
        "RAVDESS/Actor_02/03-01-03-01-01-01-02.WAV", // same clip twice is fine
        "RAVDESS/Actor_02/03-02-03-01-01-01-02.wav", // song: skipped
        "RAVDESS/Actor_02/notes.txt",                // not audio: ignored
        "RAVDESS/__MACOSX/Actor_02/._03-01-03-01-01-01-02.wav",
        "TESS/OAF_angry/OAF_back_angry.wav",
        "TESS/YAF_pleasant_surprised/YAF_back_ps.aiff",
        "TESS/OAF_Fear/OAF_back.wav", // no emotion: skipped
        "SAVEE/AudioData/DC/a01.wav",
        "SAVEE/AudioData/JE/su12.flac",
        "SAVEE/KL_h05.ogg",
    ];
    for file in files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        std::fs::write(path, b"")?;
    }
    let ravdess = scan(Ravdess, &dir.path().join("RAVDESS"))?;
    assert_eq!((ravdess.clips.len(), ravdess.skipped), (2, 1));
    assert_eq!(ravdess.clips[0].speaker, "RAVDESS:02");
    assert_eq!(ravdess.clips[0].label, label("happy"));
    let tess = scan(Tess, &dir.path().join("TESS"))?;
    let got: Vec<_> = tess
        .clips
        .iter()
        .map(|c| (c.speaker.as_str(), c.label))
        .collect();
    assert_eq!(
        got,
        [
            ("TESS:OAF", label("angry")),
            ("TESS:YAF", label("surprise"))
        ]
    );
    assert_eq!(tess.skipped, 1);
    let savee = scan(Savee, &dir.path().join("SAVEE"))?;
    let got: Vec<_> = savee
        .clips
        .iter()
        .map(|c| (c.speaker.as_str(), c.label))
        .collect();
    let want = [
        ("SAVEE:DC", "angry"),
        ("SAVEE:JE", "surprise"),
        ("SAVEE:KL", "happy"),
    ];
    assert_eq!(got, want.map(|(s, l)| (s, label(l))));
    assert!(scan(Crema, &dir.path().join("CREMA-D")).is_err());
    Ok(())
}

#[test]
fn split_is_fixed_and_disjoint() {
    let split = SpeakerSplit::embedded();
    let clip = |dataset, speaker: &str| Clip {
        path: PathBuf::new(),
        dataset,
        speaker: speaker_key(dataset, speaker),
        label: 0,
    };
    let mut seen = std::collections::HashSet::new();
    for dataset in Dataset::ALL {
        assert!(split.speakers(dataset, Split::Train).is_empty());
        for part in [Split::Val, Split::Test] {
            for speaker in split.speakers(dataset, part) {
                assert!(seen.insert(speaker.clone()), "{speaker} listed twice");
                let id = &speaker[dataset.name().len() + 1..];
                assert_eq!(split.split_of(&clip(dataset, id)), part);
            }
        }
    }
    let sizes = |d| {
        (
            split.speakers(d, Split::Test).len(),
            split.speakers(d, Split::Val).len(),
        )
    };
    assert_eq!(Dataset::ALL.map(sizes), [(4, 2), (12, 8), (1, 0), (1, 1)]);
    assert_eq!(split.split_of(&clip(Ravdess, "21")), Split::Train);
    assert_eq!(split.split_of(&clip(Savee, "KL")), Split::Train);
    assert_eq!(split.split_of(&clip(Tess, "YAF")), Split::Test);
    let overlap = r#"{"note": "", "datasets": {"TESS": {"test": ["OAF"], "val": ["OA"]}}}"#;
    assert!(SpeakerSplit::from_json(overlap).is_err());
}

#[test]
fn real_corpus_counts() -> anyhow::Result<()> {
    let root = Path::new("/work/shared/data/ser");
    if !root.is_dir() {
        eprintln!("skipping: no corpus at {}", root.display());
        return Ok(());
    }
    let split = SpeakerSplit::embedded();
    for (dataset, expected) in Dataset::ALL.into_iter().zip([1200, 6622, 2800, 360]) {
        let found = scan(dataset, &root.join(dataset.name()))?;
        assert_eq!(
            (found.clips.len(), found.skipped),
            (expected, 0),
            "{dataset:?}"
        );
        let count = |part| {
            found
                .clips
                .iter()
                .filter(|c| split.split_of(c) == part)
                .count()
        };
        let counts = [Split::Train, Split::Val, Split::Test].map(count);
        eprintln!("{}: train/val/test clips {counts:?}", dataset.name());
        if matches!(dataset, Ravdess | Crema) {
            assert!(counts.iter().all(|&n| n > 0), "{dataset:?} {counts:?}");
        }
        let audio = sentio::audio::decode_path(&found.clips[0].path)?;
        assert!(audio.sample_rate >= 8000 && !audio.samples.is_empty());
    }
    Ok(())
}

#[test]
fn weights_follow_the_licences_of_their_training_data() {
    let all: std::collections::BTreeSet<Dataset> = Dataset::ALL.into_iter().collect();
    // The shipped default model's card states exactly this.
    let default_card: serde_json::Value =
        serde_json::from_str(include_str!("../../models/default/model.json")).unwrap();
    assert_eq!(weights_license(&all), default_card["license"]);
    let crema = weights_license(&[Crema].into_iter().collect());
    assert!(
        crema.starts_with("ODbL 1.0/DbCL 1.0, commercial use allowed"),
        "{crema}"
    );
    assert!(weights_license(&[Crema, Savee].into_iter().collect()).starts_with("CC BY-NC-SA"));
}
