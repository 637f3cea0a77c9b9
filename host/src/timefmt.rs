//! Times as the real integration point writes and reads them.
//!
//! It answers ISO-8601 date-times with the Europe/Oslo offset and seconds precision
//! (`2019-03-25T12:38:23+01:00`), and reads a date-time without an offset as Oslo time. Archive
//! systems parse these strings, so they must match to the character.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The zone the real integration point formats times in.
fn oslo() -> TimeZone {
    TimeZone::get("Europe/Oslo").unwrap_or(TimeZone::UTC)
}

/// Milliseconds since the epoch as `yyyy-MM-ddTHH:mm:ss±hh:mm` in Oslo.
pub fn format_millis(millis: i64) -> String {
    let timestamp = Timestamp::from_millisecond(millis).unwrap_or(Timestamp::UNIX_EPOCH);
    let zoned = timestamp.to_zoned(oslo());
    zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A date-time, with or without an offset (then Oslo), as milliseconds since the epoch.
pub fn parse_date_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp.as_millisecond());
    }
    if let Ok(zoned) = text.parse::<Zoned>() {
        return Ok(zoned.timestamp().as_millisecond());
    }
    let civil: jiff::civil::DateTime = text
        .parse()
        .map_err(|_| format!("{text:?} is not an ISO-8601 date-time"))?;
    civil
        .to_zoned(oslo())
        .map(|zoned| zoned.timestamp().as_millisecond())
        .map_err(|error| format!("{text:?}: {error}"))
}

/// A date (`yyyy-MM-dd`), the start of that day in Oslo, as milliseconds since the epoch.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let date: jiff::civil::Date = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a date (yyyy-MM-dd)"))?;
    date.to_zoned(oslo())
        .map(|zoned| zoned.timestamp().as_millisecond())
        .map_err(|error| format!("{text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_the_oslo_offset_of_the_season() {
        // 2019-03-25T11:38:23Z is winter time in Oslo (+01:00), 2019-07-01T10:00:00Z summer.
        assert_eq!(
            format_millis(1_553_513_903_000),
            "2019-03-25T12:38:23+01:00"
        );
        assert_eq!(
            format_millis(1_561_975_200_000),
            "2019-07-01T12:00:00+02:00"
        );
    }

    #[test]
    fn reads_offsets_and_oslo_local_times() {
        assert_eq!(
            parse_date_time("2019-03-25T12:38:23+01:00"),
            Ok(1_553_513_903_000)
        );
        assert_eq!(
            parse_date_time("2019-03-25T12:38:23"),
            Ok(1_553_513_903_000)
        );
        assert_eq!(
            parse_date_time("2019-03-25T11:38:23Z"),
            Ok(1_553_513_903_000)
        );
        assert!(parse_date_time("yesterday").is_err());
        assert_eq!(parse_date("2019-03-25"), Ok(1_553_468_400_000));
    }
}
