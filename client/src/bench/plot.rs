//! PNG charts of a load test (plotters): latency percentiles against the number of streams
//! for a ramp, and p99 latency and server memory over time for a soak.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

/// Registers the charts' font (DejaVu Sans).
fn ensure_font() -> Result<()> {
    Ok(sentio::plot_font::ensure_font()?)
}

/// One line of a chart.
pub(super) struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

pub(super) const BLUE_: RGBColor = RGBColor(31, 119, 180);
pub(super) const ORANGE_: RGBColor = RGBColor(255, 127, 14);
pub(super) const RED_: RGBColor = RGBColor(214, 39, 40);
pub(super) const GREEN_: RGBColor = RGBColor(44, 160, 44);

/// A line chart of `left` series on the left axis and optional `right` ones on a second.
pub(super) fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    (left_label, left): (&str, &[Series]),
    right: Option<(&str, &[Series])>,
    hline: Option<(f64, &str)>,
) -> Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let all = left.iter().chain(right.iter().flat_map(|(_, s)| s.iter()));
    let x_max = all
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let top = |series: &[Series], floor: f64| {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(floor, f64::max)
            * 1.1
    };
    let y_left = top(left, hline.map_or(1.0, |h| h.0));
    let y_right = right.map_or(1.0, |(_, s)| top(s, 1.0));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(if right.is_some() { 60 } else { 0 })
        .build_cartesian_2d(0.0..x_max, 0.0..y_left)?
        .set_secondary_coord(0.0..x_max, 0.0..y_right);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(left_label)
        .label_style(("sans-serif", 14))
        .draw()?;
    for s in left {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.clone(), style).point_size(3))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    if let Some((value, name)) = hline {
        let style = ShapeStyle::from(&BLACK.mix(0.5)).stroke_width(1);
        chart
            .draw_series(LineSeries::new(vec![(0.0, value), (x_max, value)], style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    if let Some((label, series)) = right {
        chart
            .configure_secondary_axes()
            .y_desc(label)
            .label_style(("sans-serif", 14))
            .draw()?;
        for s in series {
            let style = ShapeStyle::from(&s.color).stroke_width(2);
            chart
                .draw_secondary_series(LineSeries::new(s.points.clone(), style))?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
