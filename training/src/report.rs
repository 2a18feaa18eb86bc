//! Renders evaluation results: confusion matrices as PNG (plotters) and the tables of
//! `EVAL.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use sentio::model::LABELS;

use crate::data::Clip;
use crate::eval::{Confusion, Summary};
use crate::evaluate::{Condition, Decisions};

/// Registers the charts' font (DejaVu Sans).
fn ensure_font() -> Result<()> {
    Ok(sentio::plot_font::ensure_font()?)
}

/// A row-normalized confusion matrix heat map with counts.
pub fn confusion_png(confusion: &Confusion, title: &str, path: &Path) -> Result<()> {
    ensure_font()?;
    let present: Vec<usize> = (0..8)
        .filter(|&c| confusion.support(c) > 0 || (0..8).any(|t| confusion.counts[t][c] > 0))
        .collect();
    let n = present.len();
    let root =
        BitMapBackend::new(path, (120 + 70 * n as u32, 110 + 60 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title_area, body) = root.split_vertically(40);
    title_area.titled(title, ("sans-serif", 20))?;
    let (labels_left, grid) = body.split_horizontally(100);
    let (grid, labels_bottom) = grid.split_vertically(60 * n as i32);
    let cells = grid.split_evenly((n, n));
    for (i, &t) in present.iter().enumerate() {
        let support = confusion.support(t).max(1) as f64;
        for (j, &p) in present.iter().enumerate() {
            let count = confusion.counts[t][p];
            let share = count as f64 / support;
            let cell = &cells[i * n + j];
            let shade = (255.0 * (1.0 - share)) as u8;
            cell.fill(&RGBColor(shade, shade, 255))?;
            let color = if share > 0.5 { WHITE } else { BLACK };
            let (w, h) = cell.dim_in_pixel();
            cell.draw(&Text::new(
                format!("{count}"),
                (w as i32 / 2 - 12, h as i32 / 2 - 8),
                ("sans-serif", 16).into_font().color(&color),
            ))?;
        }
        labels_left.draw(&Text::new(
            LABELS[t],
            (8, 60 * i as i32 + 22),
            ("sans-serif", 15),
        ))?;
        labels_bottom.draw(&Text::new(
            &LABELS[t][..LABELS[t].len().min(7)],
            (70 * i as i32 + 8, 10),
            ("sans-serif", 14),
        ))?;
    }
    labels_bottom.draw(&Text::new(
        "rows: true label, columns: predicted",
        (8, 35),
        ("sans-serif", 14),
    ))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A markdown table of per-class recall, one row per evaluated set.
pub fn summary_table(rows: &[(String, Summary)]) -> String {
    let mut out = String::from("| set | clips | accuracy | UAR |");
    for label in LABELS {
        let _ = write!(out, " {label} |");
    }
    out.push_str("\n|---|---:|---:|---:|");
    out.push_str(&"---:|".repeat(LABELS.len()));
    out.push('\n');
    for (name, s) in rows {
        let _ = write!(
            out,
            "| {name} | {} | {:.3} | **{:.3}** |",
            s.clips, s.accuracy, s.uar
        );
        for label in LABELS {
            match s.per_class_recall.get(label) {
                Some(r) => {
                    let _ = write!(out, " {r:.2} |");
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    out
}

/// A markdown confusion matrix (counts).
pub fn confusion_table(confusion: &Confusion) -> String {
    let mut out = String::from("| true \\ predicted |");
    for label in LABELS {
        let _ = write!(out, " {label} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(LABELS.len()));
    out.push('\n');
    for (t, row) in confusion.counts.iter().enumerate() {
        if confusion.support(t) == 0 {
            continue;
        }
        let _ = write!(out, "| {} |", LABELS[t]);
        for count in row {
            let _ = write!(out, " {count} |");
        }
        out.push('\n');
    }
    out
}

/// One partition's outcome: its name, decisions per condition, test clips, validation UAR.
pub type PartitionResult = (String, Vec<Decisions>, Vec<Clip>, f64);

/// A protocol's table: UAR per partition and condition (8 classes, and 7 for clean), with
/// the mean and standard deviation over partitions.
pub fn protocol_summary(
    architecture: &sentio::model::Architecture,
    results: &[PartitionResult],
) -> String {
    let mut out = format!(
        "## `{}`

| partition | test clips | validation UAR |",
        architecture.name()
    );
    for c in Condition::ALL {
        let _ = write!(out, " UAR {} |", c.name());
    }
    out.push_str(" UAR clean, 7 classes |\n|---|---:|---:|");
    out.push_str(&"---:|".repeat(Condition::ALL.len() + 1));
    out.push('\n');
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); Condition::ALL.len() + 2];
    for (name, decisions, clips, val) in results {
        let mut values = vec![*val];
        for c in Condition::ALL {
            let uar = decisions
                .iter()
                .find(|d| d.condition == c)
                .map_or(f64::NAN, |d| d.confusion(clips, |_| true).uar());
            values.push(uar);
        }
        let clean7 = decisions
            .iter()
            .find(|d| d.condition == Condition::Clean)
            .map_or(f64::NAN, |d| {
                d.confusion(clips, |_| true).calm_as_neutral().uar()
            });
        values.push(clean7);
        let _ = write!(out, "| {name} | {} |", clips.len());
        for (column, v) in columns.iter_mut().zip(&values) {
            column.push(*v);
            let _ = write!(out, " {v:.3} |");
        }
        out.push('\n');
    }
    out.push_str("| **mean ± sd** | |");
    for column in &columns {
        let n = column.len().max(1) as f64;
        let mean = column.iter().sum::<f64>() / n;
        let sd = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let _ = write!(out, " **{mean:.3}** ± {sd:.3} |");
    }
    out.push('\n');
    out
}

/// The call-level protocol beside clip-by-clip scoring: UAR per set and condition, each
/// clip alone (`per_clip`), each speaker's clips read as one call (`calls`) and each
/// speaker's clips of one emotion as one call (`single`); 8 classes, then each set decided
/// among its own classes.
pub fn call_protocol_table(
    clips: &[Clip],
    per_clip: &[Decisions],
    calls: &[Decisions],
    single: &[Decisions],
) -> String {
    let mut sets: Vec<(String, Option<crate::data::Dataset>)> = vec![("all".into(), None)];
    for d in crate::data::Dataset::ALL {
        if clips.iter().any(|c| c.dataset == d) {
            sets.push((d.name().into(), Some(d)));
        }
    }
    let mut out = String::new();
    for own in [false, true] {
        out += if own {
            "\nEach set decided among its own classes:\n\n"
        } else {
            "8 classes (each cell: clip alone / as calls / as one-emotion calls):\n\n"
        };
        out += "| set |";
        let mut rule = String::from("|---|");
        for d in per_clip {
            let _ = write!(out, " {} |", d.condition.name());
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "\n{rule}");
        for (name, dataset) in &sets {
            let _ = write!(out, "| {name} |");
            for ((alone, call), one) in per_clip.iter().zip(calls).zip(single) {
                let keep = crate::evaluate::of_dataset(*dataset);
                let uar = |d: &Decisions| {
                    if own {
                        d.confusion_within_own_classes(clips, &keep).uar()
                    } else {
                        d.confusion(clips, &keep).uar()
                    }
                };
                let _ = write!(
                    out,
                    " {:.3} / **{:.3}** / {:.3} |",
                    uar(alone),
                    uar(call),
                    uar(one)
                );
            }
            out.push('\n');
        }
    }
    out
}
