//! Latency samples, and the table the run ends with.

use std::time::Duration;

/// Latencies in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u32>,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.micros.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    pub fn record_micros(&mut self, us: u64) {
        self.micros.push(us.min(u64::from(u32::MAX)) as u32);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// The `p`-th percentile (0..=100) in milliseconds; 0 without samples.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        self.micros.sort_unstable();
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.micros.len()) - 1;
        f64::from(self.micros[index]) / 1000.0
    }

    /// "p50 0.41 ms, p99 1.90 ms"
    pub fn summary(&mut self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            self.percentile_ms(50.0),
            self.percentile_ms(99.0)
        )
    }

    /// "p50 0.41 ms, p99 1.90 ms, max 7.3 ms"
    pub fn summary_with_max(&mut self) -> String {
        format!(
            "{}, max {:.1} ms",
            self.summary(),
            self.percentile_ms(100.0)
        )
    }
}

/// The index of the median of `values` (the lower one for an even count).
pub fn median_index(values: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    order[(values.len() - 1) / 2]
}

/// "7,923 ev/s" for one run, "7,923 ev/s (median of 3: 7,100-8,012)" for more.
pub fn rate_summary(values: &[f64]) -> String {
    let median = values[median_index(values)];
    if values.len() == 1 {
        return format!("{} ev/s", thousands(median));
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!(
        "{} ev/s (median of {}: {}-{})",
        thousands(median),
        values.len(),
        thousands(min),
        thousands(max)
    )
}

/// 12345.6 -> "12,346"
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line of the final table.
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub ratio: String,
    /// `None` when the line has no target.
    pub pass: Option<bool>,
}

impl Row {
    /// A measured figure without a target.
    pub fn info(figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            figure: figure.into(),
            value: value.into(),
            target: String::new(),
            ratio: String::new(),
            pass: None,
        }
    }
}

/// Prints the rows as a Markdown table, so that it can be pasted as is.
pub fn print_table(rows: &[Row]) {
    let header = ["figure", "value", "target", "ratio", "result"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let result = match r.pass {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "",
            };
            [
                r.figure.clone(),
                r.value.clone(),
                r.target.clone(),
                r.ratio.clone(),
                result.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&header.map(str::to_owned));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &cells {
        line(row);
    }
}
