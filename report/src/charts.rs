//! The report's charts, drawn by plotters into SVG strings that the HTML
//! report inlines. Only measured points are drawn; a chart without data says so.

use plotters::prelude::*;

/// One line of a chart: its label and (x, y) points.
pub type Line = (String, Vec<(f64, f64)>);

/// A chart to draw.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Heading.
    pub title: String,
    /// What the x axis measures.
    pub x_label: String,
    /// What the y axis measures.
    pub y_label: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// Points drawn as dots, not joined (measurements beside a fitted curve).
    pub dots: Vec<Line>,
}

impl Chart {
    /// A chart of lines over seconds into the run.
    pub fn over_time(title: &str, y_label: &str, lines: Vec<Line>) -> Chart {
        Chart {
            title: title.to_owned(),
            x_label: "seconds into the run".into(),
            y_label: y_label.to_owned(),
            lines,
            dots: Vec::new(),
        }
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

impl Chart {
    /// The chart as an SVG document, or `None` when it has no points.
    pub fn svg(&self) -> Option<String> {
        let points = self.lines.iter().chain(&self.dots).flat_map(|(_, p)| p.iter());
        let (mut x_max, mut y_max) = (0.0f64, 0.0f64);
        let mut any = false;
        for (x, y) in points {
            any = true;
            x_max = x_max.max(*x);
            y_max = y_max.max(*y);
        }
        if !any {
            return None;
        }
        let x_max = x_max.max(1.0);
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (760, 280)).into_drawing_area();
            root.fill(&WHITE).ok()?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .ok()?;
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .ok()?;
            for (i, (label, points)) in self.lines.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                    .ok()?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
            for (i, (label, points)) in self.dots.iter().enumerate() {
                let color = PALETTE[(self.lines.len() + i) % PALETTE.len()];
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .ok()?
                    .label(label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            }
            if self.lines.len() + self.dots.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(self.legend_corner(x_max, y_max))
                    .draw()
                    .ok()?;
            }
            root.present().ok()?;
        }
        Some(svg)
    }
}

impl Chart {
    /// The corner where the legend hides the fewest points: each corner's box
    /// is a third of the width and of the height.
    fn legend_corner(&self, x_max: f64, y_max: f64) -> SeriesLabelPosition {
        let points: Vec<(f64, f64)> =
            self.lines.iter().chain(&self.dots).flat_map(|(_, p)| p.iter().copied()).collect();
        let corners = [
            (SeriesLabelPosition::UpperLeft, false, true),
            (SeriesLabelPosition::UpperRight, true, true),
            (SeriesLabelPosition::LowerRight, true, false),
            (SeriesLabelPosition::LowerLeft, false, false),
        ];
        let hidden = |right: bool, upper: bool| {
            let in_x = |x: f64| if right { x >= x_max * 2.0 / 3.0 } else { x <= x_max / 3.0 };
            let in_y = |y: f64| if upper { y >= y_max * 2.0 / 3.0 } else { y <= y_max / 3.0 };
            points.iter().filter(|(x, y)| in_x(*x) && in_y(*y)).count()
        };
        corners
            .into_iter()
            .min_by_key(|(_, right, upper)| hidden(*right, *upper))
            .map_or(SeriesLabelPosition::UpperLeft, |(corner, ..)| corner)
    }
}

impl Chart {
    /// Cores used by each process of `timeline`, second by second.
    pub fn cpu_by_process(timeline: &q2o_env::resources::Timeline) -> Chart {
        let lines = timeline
            .processes
            .iter()
            .map(|(who, series)| {
                (who.name.clone(), series.cores.iter().enumerate().map(|(i, c)| ((i + 1) as f64, *c)).collect())
            })
            .collect();
        Chart::over_time("CPU by process", "cores", lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_draw_their_points_and_empty_ones_draw_nothing() {
        let chart = Chart::over_time(
            "p95",
            "ms",
            vec![("p95".into(), vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)]), ("p99".into(), vec![(0.0, 2.0)])],
        );
        let svg = chart.svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("p99"), "the legend names the lines");
        assert!(svg.contains("seconds into the run"));
        let dotted = Chart { dots: vec![("measured".into(), vec![(1.0, 2.0), (2.0, 3.5)])], ..chart.clone() };
        let svg = dotted.svg().unwrap();
        assert_eq!(svg.matches("<circle").count(), 3, "two dots and the legend's");
        assert!(Chart { lines: vec![("x".into(), vec![])], ..chart }.svg().is_none());
    }

    #[test]
    fn the_legend_goes_where_it_hides_the_fewest_points() {
        let falling =
            Chart::over_time("usl", "req/s", vec![("fit".into(), vec![(0.0, 10.0), (5.0, 5.0), (10.0, 1.0)])]);
        assert!(matches!(falling.legend_corner(10.0, 11.0), SeriesLabelPosition::UpperRight));
        let rising = Chart::over_time("rate", "req/s", vec![("x".into(), vec![(0.0, 0.0), (5.0, 5.0), (10.0, 10.0)])]);
        assert!(matches!(rising.legend_corner(10.0, 11.0), SeriesLabelPosition::UpperLeft));
    }
}
