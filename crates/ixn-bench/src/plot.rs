//! `--plot FILE.svg`: throughput and submit → invite latency (p50, p99) per second, as two
//! stacked line charts sharing the time axis. Plain SVG written by hand: a few polylines,
//! axes and labels, no plotting library.

use std::fmt::Write as _;

use crate::load::Sample;

const WIDTH: f64 = 800.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 50.0;

/// One line of a panel.
struct Series<'a> {
    label: &'a str,
    colour: &'a str,
    points: Vec<(f64, f64)>,
}

/// The chart of a run's samples.
pub fn svg(title: &str, samples: &[Sample]) -> String {
    let height = TOP + 2.0 * PANEL + GAP + 40.0;
    let t_max = samples.iter().map(|s| s.t_s).fold(1.0, f64::max);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"22\" font-size=\"15\">{}</text>",
        escape(title)
    );
    let throughput = Series {
        label: "completed lifecycles/s",
        colour: "#1f77b4",
        points: samples.iter().map(|s| (s.t_s, s.completed_per_s)).collect(),
    };
    panel(&mut out, TOP, "lifecycles/s", t_max, &[throughput]);
    let p50 = Series {
        label: "submit → invite p50",
        colour: "#2ca02c",
        points: samples
            .iter()
            .filter_map(|s| Some((s.t_s, s.invite_p50_ms?)))
            .collect(),
    };
    let p99 = Series {
        label: "submit → invite p99",
        colour: "#d62728",
        points: samples
            .iter()
            .filter_map(|s| Some((s.t_s, s.invite_p99_ms?)))
            .collect(),
    };
    panel(&mut out, TOP + PANEL + GAP, "ms", t_max, &[p50, p99]);
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds</text>\n</svg>",
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        height - 8.0
    );
    out
}

fn panel(out: &mut String, top: f64, unit: &str, t_max: f64, series: &[Series<'_>]) {
    let w = WIDTH - LEFT - RIGHT;
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let x = |t: f64| LEFT + w * t / t_max;
    let y = |v: f64| top + PANEL - PANEL * v / y_max;
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{w}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#888\"/>"
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + w,
            LEFT - 6.0,
            y(v) + 4.0,
            label(v),
            y0 = y(v)
        );
    }
    for i in 0..=5 {
        let t = t_max * f64::from(i) / 5.0;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.0}</text>",
            x(t),
            top + PANEL + 16.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>",
        top + PANEL / 2.0,
        top + PANEL / 2.0,
        escape(unit)
    );
    for (n, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            s.colour,
            points.join(" ")
        );
        let ly = top + 16.0 + 16.0 * n as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"2\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LEFT + 10.0,
            LEFT + 30.0,
            s.colour,
            LEFT + 36.0,
            ly + 4.0,
            escape(s.label)
        );
    }
}

/// A round upper bound for an axis (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&m| m >= v)
        .unwrap_or(10.0 * p)
}

fn label(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up() {
        let cases = [
            (0.0, 1.0),
            (0.7, 1.0),
            (3.0, 5.0),
            (7.5, 10.0),
            (1234.0, 2000.0),
            (5000.0, 5000.0),
        ];
        for (v, want) in cases {
            assert!((nice_max(v) - want).abs() < 1e-9, "{v} → {}", nice_max(v));
        }
    }

    #[test]
    fn draws_every_series() {
        let samples: Vec<Sample> = (1..=3)
            .map(|i| Sample {
                t_s: f64::from(i),
                completed_per_s: 100.0 * f64::from(i),
                invite_p50_ms: Some(1.0),
                invite_p99_ms: if i == 2 { None } else { Some(4.0) },
                server_cpu_percent: None,
                server_rss_bytes: None,
            })
            .collect();
        let svg = svg("lifecycle <sqlite>", &samples);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("lifecycle &lt;sqlite&gt;"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
