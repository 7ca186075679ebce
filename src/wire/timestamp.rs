//! Timestamps travel as strings and are stored as sent; these helpers make and
//! check them so that every part agrees on what a valid one is.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// The current time as RFC 3339 UTC with millisecond precision, the form
/// every part of the system writes.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Accepts RFC 3339, and also a naive ISO 8601 time (read as UTC), because
/// older Python clients sent `datetime.now().isoformat()`.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| format!("'{text}' is not an RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc3339_and_naive_iso() {
        assert!(parse_timestamp("2024-01-01T00:00:00Z").is_ok());
        assert!(parse_timestamp("2024-01-01T00:00:00.123+02:00").is_ok());
        assert!(parse_timestamp("2024-01-01T00:00:00.123456").is_ok());
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn now_is_parseable_and_utc() {
        let now = now_rfc3339();
        assert!(now.ends_with('Z'));
        assert!(parse_timestamp(&now).is_ok());
    }
}
