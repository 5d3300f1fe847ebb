//! Small charts drawn on the server as inline SVG: a bar chart (deployments per week) and a
//! point chart (lead time per deployment). Each has a fixed viewBox, a `<title>`, `role="img"`
//! with an `aria-label` saying what it shows, labelled axes, and colours that stand out on white;
//! no fonts, scripts or anything else fetched. Every text is escaped here, so the result may be
//! embedded as is (`layout::trusted`). Pages put a table beside each chart: the chart is never
//! the only way to read the numbers.

use super::layout::duration;
use std::fmt::Write;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 620.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 204.0;
/// Bars, points and lines: 7.6:1 against white.
const INK: &str = "#0550ae";
/// Axes and labels: 5.9:1 and more against white.
const AXIS: &str = "#57606a";
const TEXT: &str = "#1f2328";
/// Grid lines only guide the eye; the labels carry the values.
const GRID: &str = "#d0d7de";

/// What a chart's values count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Whole things (deployments).
    Count,
    /// Seconds, labelled as durations (`2h 10m`).
    Seconds,
}

impl Unit {
    fn label(self, value: f64) -> String {
        match self {
            Unit::Count => format!("{}", value.round() as i64),
            Unit::Seconds => duration(value.round() as i64),
        }
    }

    /// Gridline values from 0 to at least `max`, at most five steps, in round units.
    fn ticks(self, max: f64) -> Vec<f64> {
        let steps: Vec<f64> = match self {
            Unit::Count => (0..12)
                .flat_map(|power| [1.0, 2.0, 5.0].map(|base| base * 10f64.powi(power)))
                .collect(),
            Unit::Seconds => [
                60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 345600,
                604800, 1209600, 2419200,
            ]
            .into_iter()
            .map(|step| step as f64)
            .chain((2..1000).map(|months| months as f64 * 2_419_200.0))
            .collect(),
        };
        let max = max.max(1.0);
        let step = steps
            .into_iter()
            .find(|step| max / step <= 5.0)
            .unwrap_or(max);
        let count = (max / step).ceil() as usize;
        (0..=count).map(|i| i as f64 * step).collect()
    }
}

/// What a chart is called and what its axes mean.
#[derive(Clone, Copy, Debug)]
pub struct Chart<'a> {
    pub title: &'a str,
    /// The `aria-label`: what the chart shows, in a sentence.
    pub description: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub unit: Unit,
}

/// One bar: its label under the axis and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// One point: where along the x axis (within the chart's range), its value, and what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub label: String,
}

/// Text safe inside SVG elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn open(chart: &Chart<'_>) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" font-family="system-ui, sans-serif" font-size="12"><title>{}</title>"#,
        escape(chart.description),
        escape(chart.title),
    );
    svg
}

/// The y gridlines and their labels, the axes and their titles; returns the top of the scale.
fn frame(svg: &mut String, chart: &Chart<'_>, max: f64) -> f64 {
    let ticks = chart.unit.ticks(max);
    let top = ticks.last().copied().unwrap_or(1.0).max(1.0);
    for tick in &ticks {
        let y = BOTTOM - tick / top * (BOTTOM - TOP);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{AXIS}">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            escape(&chart.unit.label(*tick)),
        );
    }
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="{AXIS}"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" stroke="{AXIS}"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT}">{}</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="{TEXT}">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 8.0,
        escape(chart.x_label),
        (TOP + BOTTOM) / 2.0,
        escape(chart.y_label),
    );
    top
}

fn x_label(svg: &mut String, x: f64, text: &str) {
    let _ = write!(
        svg,
        r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{AXIS}">{}</text>"#,
        BOTTOM + 16.0,
        escape(text),
    );
}

/// A bar per value, labelled below (every few when there are many); one `<rect>` per bar.
pub fn bar_chart(chart: &Chart<'_>, bars: &[Bar]) -> String {
    let mut svg = open(chart);
    let max = bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
    let top = frame(&mut svg, chart, max);
    let slot = (RIGHT - LEFT) / bars.len().max(1) as f64;
    let every = bars.len().div_ceil(12).max(1);
    for (i, bar) in bars.iter().enumerate() {
        let height = bar.value.max(0.0) / top * (BOTTOM - TOP);
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let value = chart.unit.label(bar.value);
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="{INK}"><title>{}: {}</title></rect>"#,
            BOTTOM - height,
            slot * 0.7,
            escape(&bar.label),
            escape(&value),
        );
        let middle = x + slot * 0.35;
        if bars.len() <= 26 && bar.value > 0.0 {
            let _ = write!(
                svg,
                r#"<text x="{middle:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT}" font-size="11">{}</text>"#,
                BOTTOM - height - 4.0,
                escape(&value),
            );
        }
        if i % every == 0 {
            x_label(&mut svg, middle, &bar.label);
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Points over `x_range` joined in x order, with the range's ends and middle labelled by
/// `x_text`.
pub fn point_chart(
    chart: &Chart<'_>,
    points: &[Point],
    x_range: (f64, f64),
    x_text: &dyn Fn(f64) -> String,
) -> String {
    let mut svg = open(chart);
    let max = points.iter().map(|point| point.y).fold(0.0, f64::max);
    let top = frame(&mut svg, chart, max);
    let (start, end) = x_range;
    let span = (end - start).max(1.0);
    let place = |point: &Point| {
        let x = LEFT + ((point.x - start) / span).clamp(0.0, 1.0) * (RIGHT - LEFT);
        let y = BOTTOM - point.y.max(0.0) / top * (BOTTOM - TOP);
        (x, y)
    };
    for at in [start, start + span / 2.0, end] {
        let x = LEFT + (at - start) / span * (RIGHT - LEFT);
        x_label(&mut svg, x, &x_text(at));
    }
    let mut ordered: Vec<&Point> = points.iter().collect();
    ordered.sort_by(|a, b| a.x.total_cmp(&b.x));
    if ordered.len() > 1 {
        let path: Vec<String> = ordered
            .iter()
            .map(|point| {
                let (x, y) = place(point);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{INK}" stroke-width="1.5"/>"#,
            path.join(" ")
        );
    }
    for point in ordered {
        let (x, y) = place(point);
        let _ = write!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{INK}"><title>{}: {}</title></circle>"#,
            escape(&point.label),
            escape(&chart.unit.label(point.y)),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element opened is closed in order; self-closing ones stand alone.
    fn balanced(svg: &str) -> bool {
        let mut open: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else {
                return false;
            };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if open.pop().as_deref() != Some(name) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                open.push(name.to_owned());
            }
        }
        open.is_empty() && !rest.contains('>')
    }

    fn chart(unit: Unit) -> Chart<'static> {
        Chart {
            title: "Deployments <per> week & more",
            description: "Successful deployments to \"prod\" per week",
            x_label: "Week starting",
            y_label: "Deployments",
            unit,
        }
    }

    fn bars(values: &[f64]) -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(i, value)| Bar {
                label: format!("W{i}"),
                value: *value,
            })
            .collect()
    }

    #[test]
    fn a_bar_chart_is_well_formed_with_one_rect_per_bar() {
        let svg = bar_chart(&chart(Unit::Count), &bars(&[1.0, 2.0, 0.0, 4.0, 3.0]));
        assert!(balanced(&svg), "{svg}");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 5);
        assert!(svg.contains(r#"viewBox="0 0 640 260""#));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("<title>W3: 4</title>"));
        assert!(!svg.contains("<script") && !svg.contains("href"));
    }

    #[test]
    fn chart_text_is_escaped() {
        let mut bars = bars(&[1.0]);
        bars[0].label = "<b>&</b>".to_owned();
        let svg = bar_chart(&chart(Unit::Count), &bars);
        assert!(balanced(&svg), "{svg}");
        assert!(svg.contains("<title>Deployments &lt;per&gt; week &amp; more</title>"));
        assert!(
            svg.contains(r#"aria-label="Successful deployments to &quot;prod&quot; per week""#)
        );
        assert!(svg.contains("&lt;b&gt;&amp;&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn a_point_chart_is_well_formed_with_a_circle_per_point() {
        let points = vec![
            Point {
                x: 20.0,
                y: 7800.0,
                label: "r2".to_owned(),
            },
            Point {
                x: 10.0,
                y: 3600.0,
                label: "r1 <first>".to_owned(),
            },
        ];
        let svg = point_chart(&chart(Unit::Seconds), &points, (0.0, 100.0), &|x| {
            format!("t{x}")
        });
        assert!(balanced(&svg), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("<title>r2: 2h 10m</title>"));
        assert!(svg.contains("r1 &lt;first&gt;"));
        assert!(svg.contains(">t0<") && svg.contains(">t100<"));
        let empty = point_chart(&chart(Unit::Seconds), &[], (0.0, 1.0), &|_| String::new());
        assert!(balanced(&empty), "{empty}");
        assert!(!empty.contains("<circle"));
    }

    #[test]
    fn the_scale_ends_on_a_round_value_above_the_largest() {
        assert_eq!(Unit::Count.ticks(0.0), vec![0.0, 1.0]);
        assert_eq!(Unit::Count.ticks(4.0), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(Unit::Count.ticks(7.0), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(
            Unit::Seconds.ticks(7800.0),
            vec![0.0, 1800.0, 3600.0, 5400.0, 7200.0, 9000.0]
        );
        assert_eq!(Unit::Seconds.label(5400.0), "1h 30m");
    }
}
