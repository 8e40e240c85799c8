//! Durations as people read them in events and errors: `500ms`, `1.5s`, `5m`, `1h 30m`.

use std::fmt;
use std::time::Duration;

/// Displays a duration compactly: milliseconds below a second, seconds with one decimal
/// below a minute when there is a fraction, else days, hours, minutes and seconds, zero
/// parts left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            return write!(f, "{}ms", d.as_millis());
        }
        if d < Duration::from_secs(60) && d.subsec_millis() != 0 {
            return write!(f, "{:.1}s", d.as_secs_f64());
        }
        let s = d.as_secs();
        let parts = [
            (s / 86_400, "d"),
            (s / 3600 % 24, "h"),
            (s / 60 % 60, "m"),
            (s % 60, "s"),
        ];
        let mut first = true;
        for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{n}{unit}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let h = |ms: u64| Human(Duration::from_millis(ms)).to_string();
        assert_eq!(h(0), "0ms");
        assert_eq!(h(250), "250ms");
        assert_eq!(h(1_500), "1.5s");
        assert_eq!(h(30_000), "30s");
        assert_eq!(h(300_000), "5m");
        assert_eq!(h(5_400_000), "1h 30m");
        assert_eq!(h(90_061_000), "1d 1h 1m 1s");
    }
}
