//! Kubernetes' restart back-off for crashing containers and failing image
//! pulls: the first failure is retried at once, then 10s, 20s, 40s, ...
//! capped at 5 minutes; a container that ran for longer than twice the cap
//! since the last restart starts over at 10s. This mirrors client-go's
//! `flowcontrol.Backoff` as the kubelet uses it.

use std::time::{Duration, Instant};

pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The back-off state of one container.
#[derive(Debug, Clone, Default)]
pub(crate) struct CrashBackoff {
    /// Current window and when it was last advanced; `None` before the
    /// first restart.
    entry: Option<(Duration, Instant)>,
}

impl CrashBackoff {
    /// How long after `now` a container that finished at `finished_at`
    /// must wait before its next start (zero: start now).
    pub(crate) fn delay(&self, finished_at: Instant, now: Instant) -> Duration {
        let Some((window, last)) = self.entry else {
            return Duration::ZERO;
        };
        if expired(finished_at, last) {
            return Duration::ZERO;
        }
        let since = now.saturating_duration_since(finished_at);
        window.saturating_sub(since)
    }

    /// The current window, for messages such as `back-off 20s restarting
    /// failed container`.
    pub(crate) fn window(&self) -> Duration {
        self.entry.map(|(w, _)| w).unwrap_or(INITIAL_BACKOFF)
    }

    /// Record a restart done at `now` of a container that finished at
    /// `finished_at`: the next window doubles (or starts over).
    pub(crate) fn record_restart(&mut self, finished_at: Instant, now: Instant) {
        let window = match self.entry {
            Some((w, last)) if !expired(finished_at, last) => (w * 2).min(MAX_BACKOFF),
            _ => INITIAL_BACKOFF,
        };
        self.entry = Some((window, now));
    }
}

/// A container that ran longer than twice the cap since the last restart
/// is healthy again.
fn expired(finished_at: Instant, last: Instant) -> bool {
    finished_at.saturating_duration_since(last) > MAX_BACKOFF * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Crash immediately after every start and restart as soon as allowed:
    /// the waits are 0, 10, 20, 40, 80, 160, 300, 300 seconds.
    #[test]
    fn waits_double_from_ten_seconds_to_five_minutes() {
        let mut b = CrashBackoff::default();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..8 {
            let finished = now; // crashed right after starting
            let wait = b.delay(finished, finished);
            waits.push(wait.as_secs());
            now = finished + wait;
            b.record_restart(finished, now);
        }
        assert_eq!(waits, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn time_already_waited_counts() {
        let mut b = CrashBackoff::default();
        let t0 = Instant::now();
        b.record_restart(t0, t0);
        let finished = t0 + Duration::from_secs(1);
        assert_eq!(
            b.delay(finished, finished + Duration::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(
            b.delay(finished, finished + Duration::from_secs(11)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_long_healthy_run_resets_the_window() {
        let mut b = CrashBackoff::default();
        let t0 = Instant::now();
        b.record_restart(t0, t0);
        b.record_restart(t0, t0); // window 20s
        assert_eq!(b.window(), Duration::from_secs(20));
        let finished = t0 + Duration::from_secs(601);
        assert_eq!(b.delay(finished, finished), Duration::ZERO);
        b.record_restart(finished, finished);
        assert_eq!(b.window(), INITIAL_BACKOFF);
    }
}
