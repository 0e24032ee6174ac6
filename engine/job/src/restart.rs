//! Restart strategies, with Flink's option names:
//!
//! - `restart-strategy.type`: `none`, `fixed-delay` or `exponential-delay`
//!   (the default when checkpointing is on; `none` otherwise).
//! - `restart-strategy.fixed-delay.attempts` (default 3), `.delay` (1 s).
//! - `restart-strategy.exponential-delay.initial-backoff` (1 s),
//!   `.max-backoff` (1 min), `.backoff-multiplier` (2.0), and
//!   `.attempts-before-reset-backoff`, the maximum number of restarts
//!   (Flink's default is unlimited; Sluice's is 10, so that a job that fails
//!   deterministically ends with its error instead of restarting forever).

use std::time::Duration;

use crate::{Config, JobError};

#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    None,
    FixedDelay { attempts: u32, delay: Duration },
    Exponential { initial: Duration, max: Duration, multiplier: f64, attempts: u32 },
}

impl RestartStrategy {
    pub fn from_config(config: &Config, checkpointing: bool) -> Result<RestartStrategy, JobError> {
        let kind =
            config.get("restart-strategy.type").or(config.get("restart-strategy")).map(|s| s.trim().to_lowercase());
        let kind = kind.unwrap_or_else(|| if checkpointing { "exponential-delay".into() } else { "none".into() });
        let ms = |k: &str, d: u64| config.duration_ms(k, d).map(Duration::from_millis);
        Ok(match kind.as_str() {
            "none" | "off" | "disable" => RestartStrategy::None,
            "fixed-delay" | "fixeddelay" => RestartStrategy::FixedDelay {
                attempts: config.usize("restart-strategy.fixed-delay.attempts", 3)? as u32,
                delay: ms("restart-strategy.fixed-delay.delay", 1000)?,
            },
            "exponential-delay" | "exponentialdelay" => {
                let multiplier = match config.get("restart-strategy.exponential-delay.backoff-multiplier") {
                    None => 2.0,
                    Some(v) => v.trim().parse::<f64>().ok().filter(|m| *m >= 1.0).ok_or_else(|| {
                        JobError::Config(format!(
                            "'restart-strategy.exponential-delay.backoff-multiplier' must be a number >= 1, not '{v}'"
                        ))
                    })?,
                };
                RestartStrategy::Exponential {
                    initial: ms("restart-strategy.exponential-delay.initial-backoff", 1000)?,
                    max: ms("restart-strategy.exponential-delay.max-backoff", 60_000)?,
                    multiplier,
                    attempts: config.usize("restart-strategy.exponential-delay.attempts-before-reset-backoff", 10)?
                        as u32,
                }
            }
            other => {
                return Err(JobError::Config(format!(
                    "'restart-strategy.type': unknown strategy '{other}'; use none, fixed-delay or exponential-delay"
                )));
            }
        })
    }

    /// The delay before restart number `restart` (1-based), or `None` when no
    /// more restarts are allowed.
    pub fn delay(&self, restart: u32) -> Option<Duration> {
        match self {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => (restart <= *attempts).then_some(*delay),
            RestartStrategy::Exponential { initial, max, multiplier, attempts } => {
                if restart > *attempts {
                    return None;
                }
                let d = initial.as_secs_f64() * multiplier.powi(restart.saturating_sub(1) as i32);
                Some(Duration::from_secs_f64(d.min(max.as_secs_f64())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config { values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn exponential_backoff_grows_to_the_maximum_and_stops() {
        let s = RestartStrategy::from_config(
            &config(&[
                ("restart-strategy.exponential-delay.initial-backoff", "100 ms"),
                ("restart-strategy.exponential-delay.max-backoff", "1 s"),
                ("restart-strategy.exponential-delay.attempts-before-reset-backoff", "6"),
            ]),
            true,
        )
        .unwrap();
        let delays: Vec<_> = (1..=7).map(|n| s.delay(n).map(|d| d.as_millis())).collect();
        assert_eq!(delays, vec![Some(100), Some(200), Some(400), Some(800), Some(1000), Some(1000), None]);
    }

    #[test]
    fn defaults_follow_checkpointing() {
        assert_eq!(RestartStrategy::from_config(&config(&[]), false).unwrap(), RestartStrategy::None);
        assert!(matches!(
            RestartStrategy::from_config(&config(&[]), true).unwrap(),
            RestartStrategy::Exponential { .. }
        ));
        let f = RestartStrategy::from_config(&config(&[("restart-strategy.type", "fixed-delay")]), false).unwrap();
        assert_eq!(f.delay(3), Some(Duration::from_secs(1)));
        assert_eq!(f.delay(4), None);
        let e = RestartStrategy::from_config(&config(&[("restart-strategy.type", "sometimes")]), false).unwrap_err();
        assert!(e.to_string().contains("unknown strategy 'sometimes'"), "{e}");
    }
}
