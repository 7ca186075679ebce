//! Dollar figures in JSON. A sum or difference of the CLI's costs carries
//! binary noise (0.1 + 0.2 is 0.30000000000000004); every `cost_usd` is
//! written rounded to a billionth ([`round_usd`], which keeps every digit
//! the CLI reports), whatever path summed it: the server's SQL, the
//! backups' replay, or an older database's stored sums.

use serde::Serializer;

use super::round_usd;

/// `serialize_with` for a dollar figure.
pub fn serialize<S: Serializer>(cost: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round_usd(*cost))
}

/// `serialize_with` for a dollar figure that may be absent.
pub fn serialize_option<S: Serializer>(
    cost: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match cost {
        Some(cost) => serializer.serialize_some(&round_usd(*cost)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_goes_and_digits_stay() {
        #[derive(serde::Serialize)]
        struct Cost {
            #[serde(serialize_with = "serialize")]
            total: f64,
            #[serde(serialize_with = "serialize_option")]
            last: Option<f64>,
        }
        let cost = |total, last| serde_json::to_string(&Cost { total, last }).unwrap();
        assert_eq!(
            cost(0.1 + 0.2, Some(0.000_376 + 0.000_188)),
            r#"{"total":0.3,"last":0.000564}"#
        );
        assert_eq!(
            cost(1_234_567.25, Some(0.123_456_78)),
            r#"{"total":1234567.25,"last":0.12345678}"#
        );
        assert_eq!(cost(0.0, None), r#"{"total":0.0,"last":null}"#);
    }
}
