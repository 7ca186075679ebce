//! Dollar figures in JSON. A sum of the CLI's costs carries binary noise
//! (0.1 + 0.2 is 0.30000000000000004); written rounded to 10 decimal
//! places, it keeps every digit the CLI reports (it gives 6 to 8) and
//! loses the noise. Stored values keep their meaning: only what is written
//! is rounded.

use serde::Serializer;

/// `cost` rounded to 10 decimal places, through its decimal text (exact
/// for any amount, unlike scaling by 1e10).
pub fn round(cost: f64) -> f64 {
    format!("{cost:.10}").parse().unwrap_or(cost)
}

/// `serialize_with` for a dollar figure.
pub fn serialize<S: Serializer>(cost: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round(*cost))
}

/// `serialize_with` for a dollar figure that may be absent.
pub fn serialize_option<S: Serializer>(
    cost: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match cost {
        Some(cost) => serializer.serialize_some(&round(*cost)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::round;

    #[test]
    fn noise_goes_and_digits_stay() {
        assert_eq!(round(0.1 + 0.2), 0.3);
        assert_eq!(round(0.000_563_999_999_999_999_9), 0.000564);
        assert_eq!(round(0.000_188), 0.000188);
        assert_eq!(round(0.123_456_78), 0.123_456_78);
        assert_eq!(round(1_234_567.25), 1_234_567.25);
        assert_eq!(round(0.0), 0.0);
        assert_eq!(
            serde_json::to_string(&round(0.000_376 + 0.000_188)).unwrap(),
            "0.000564"
        );
    }
}
