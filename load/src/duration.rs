//! Human durations on the command line: `20s`, `500ms`, `2m`, `1m30s`, `1.5s`;
//! a bare number is seconds.

use std::time::Duration;

/// Parses a duration: one or more `<number><unit>` parts with units `ms`,
/// `s`, `m`, `h` (a bare number means seconds). Zero is allowed; callers
/// that need a positive duration check it themselves.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("a duration is required, e.g. 20s, 500ms or 2m".to_owned());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs, input);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("'{input}' is not a duration (try 20s, 500ms or 2m)"))?;
        let factor = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "'{input}': every number needs a unit (ms, s, m, h)"
                ));
            }
            other => {
                return Err(format!(
                    "'{input}': unknown unit '{other}' (use ms, s, m, h)"
                ));
            }
        };
        total += seconds(value * factor, input)?;
        rest = next;
    }
    Ok(total)
}

/// A non-negative, finite number of seconds (at most a day: a load run, not a calendar).
fn seconds(secs: f64, input: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{input}' is not a duration"));
    }
    if secs > 86_400.0 {
        return Err(format!("'{input}' is longer than a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Like [`parse`], refusing zero.
pub fn parse_positive(input: &str) -> Result<Duration, String> {
    let d = parse(input)?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// `20s`, `1.5s`, `250ms`: short, for progress lines.
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        "0s".to_owned()
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let secs = d.as_secs_f64();
        if secs.fract() == 0.0 {
            format!("{secs:.0}s")
        } else {
            format!("{secs:.1}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_numbers_parse() {
        assert_eq!(parse("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        for bad in [
            "", "s", "20x", "abc", "1m30", "-5s", "1.2.3s", "2d", "100000h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse("20x").unwrap_err().contains("unknown unit 'x'"));
        assert!(parse("1m30").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn zero_is_refused_where_a_positive_duration_is_needed() {
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn format_is_short() {
        assert_eq!(format(Duration::from_secs(20)), "20s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
