//! The failure history of a job (`GET /v1/job/exceptions`, the web UI's
//! exceptions): each failed attempt's error, when it happened, and whether the
//! restart strategy restarted the job after it. Bounded: the newest are kept.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use sluice_api::rest::JobException;

/// Failures remembered; older ones are forgotten.
const KEPT: usize = 100;

#[derive(Debug, Default)]
pub struct ExceptionLog {
    entries: Mutex<VecDeque<JobException>>,
}

impl ExceptionLog {
    pub fn record(&self, message: &str, restarted: bool) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() == KEPT {
                e.pop_front();
            }
            e.push_back(JobException { time: super::rfc3339(SystemTime::now()), message: message.into(), restarted });
        }
    }

    /// Newest first.
    pub fn newest_first(&self) -> Vec<JobException> {
        self.entries.lock().map(|e| e.iter().rev().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_failures_are_kept_newest_first() {
        let log = ExceptionLog::default();
        for i in 0..KEPT + 5 {
            log.record(&format!("failure {i}"), i % 2 == 0);
        }
        let e = log.newest_first();
        assert_eq!(e.len(), KEPT);
        assert_eq!(e[0].message, format!("failure {}", KEPT + 4));
        assert!(e[0].restarted);
        assert_eq!(e.last().unwrap().message, "failure 5");
    }
}
