//! Wall-clock time as providers write it.
//!
//! Statuses carry the time they happened, and SBDs and SOAP bodies carry ISO 8601 timestamps;
//! the guest has WASI's clock but no date library, and the conversion between Unix milliseconds
//! and a UTC calendar date is all it needs, so it is written and tested once here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now (0 if the clock is before it).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `millis` as RFC 3339 in UTC with milliseconds, e.g. `2024-03-01T12:00:00.000Z`.
pub fn rfc3339(millis: u64) -> String {
    let seconds = millis / 1000;
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis % 1000
    )
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (`Z` or `±hh:mm` offset, optional
/// fraction); none when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let number = |range: core::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest[1..].split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Milliseconds since the epoch of an `xs:dateTime`: RFC 3339, or with no zone at all, which
/// XML Schema allows and Altinn 2 writes, read as UTC; none when it is not one.
pub fn parse_xs_datetime(text: &str) -> Option<u64> {
    let text = text.trim();
    parse_rfc3339(text).or_else(|| {
        let zoneless = text.get(19..).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with('.') && rest[1..].bytes().all(|b| b.is_ascii_digit())
        });
        zoneless
            .then(|| parse_rfc3339(&format!("{text}Z")))
            .flatten()
    })
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by 400-year eras.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day count since 1970-01-01 of a proleptic Gregorian date; the inverse of
/// [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xs_datetime_without_a_zone_is_utc() {
        let millis = 1_780_000_123_456;
        assert_eq!(parse_xs_datetime("2026-05-28T20:28:43.456Z"), Some(millis));
        assert_eq!(
            parse_xs_datetime("2026-05-28T22:28:43.456+02:00"),
            Some(millis)
        );
        assert_eq!(parse_xs_datetime("2026-05-28T20:28:43.456"), Some(millis));
        assert_eq!(parse_xs_datetime("2026-05-28T20:28:43"), Some(millis - 456));
        for nonsense in [
            "",
            "yesterday",
            "2026-13-01T00:00:00",
            "2026-01-01T00:00:00x",
        ] {
            assert_eq!(parse_xs_datetime(nonsense), None, "{nonsense}");
        }
    }

    #[test]
    fn known_instants_are_written_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_709_294_400_000), "2024-03-01T12:00:00.000Z");
    }

    #[test]
    fn written_instants_read_back_and_offsets_count() {
        for millis in [0, 951_782_400_123, 1_709_294_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(millis)), Some(millis));
        }
        assert_eq!(
            parse_rfc3339("2024-03-01T13:00:00+01:00"),
            Some(1_709_294_400_000)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T12:00:00.5Z"),
            Some(1_709_294_400_500)
        );
    }

    #[test]
    fn malformed_timestamps_are_none() {
        for text in [
            "",
            "2024-03-01",
            "2024-13-01T00:00:00Z",
            "2024-03-01T00:00:00",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }
}
