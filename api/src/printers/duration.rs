//! Ages as kubectl prints them: apimachinery's `duration.HumanDuration`,
//! about two significant figures (`10s`, `5m`, `3h5m`, `2d`).

use jiff::{SignedDuration, Timestamp};

/// apimachinery's `HumanDuration`. Up to a second in the future still
/// reads `0s` (clocks differ a little); further is `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The time since an RFC 3339 timestamp, as the AGE column shows it;
/// `<unknown>` when there is none (Go's zero time).
pub fn age(creation: Option<&str>, now: Timestamp) -> String {
    match creation.and_then(|c| c.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(secs: i64) -> String {
        human_duration(SignedDuration::from_secs(secs))
    }

    #[test]
    fn matches_apimachinery() {
        let cases = [
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (10, "10s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (2 * 86400 + 5 * 3600, "2d5h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(hd(secs), want, "{secs}s");
        }
    }

    #[test]
    fn ages() {
        let now: Timestamp = "2024-05-01T12:00:10Z".parse().unwrap();
        assert_eq!(age(Some("2024-05-01T12:00:00Z"), now), "10s");
        assert_eq!(age(Some("2024-04-29T12:00:00Z"), now), "2d");
        assert_eq!(age(None, now), "<unknown>");
        assert_eq!(age(Some("not a time"), now), "<unknown>");
    }
}
