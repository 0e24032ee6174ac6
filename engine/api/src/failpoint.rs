//! Fault points: named places in the engine and the operator where a test can
//! make a failure happen at exactly the moment a race needs, instead of
//! sleeping and hoping. Both processes read the same variable, so a test
//! harness configures either one the same way.
//!
//! They are configured from the environment when a process starts, in the
//! syntax of the `fail` crate:
//!
//! ```text
//! SLUICE_FAILPOINTS="checkpoint.before-metadata=1*pause(/tmp/x);checkpoint.committed=error"
//! ```
//!
//! Each entry is `name=[count*]action`. With a count, the action fires on that
//! many hits and the point is off afterwards. Actions:
//! - `off`: nothing;
//! - `exit` or `exit(code)`: the process ends at once, without cleanup, as
//!   after `kill -9` (exit code 137 unless given);
//! - `error` or `error(message)`: [`hit`] returns the message, and the caller
//!   fails the operation in the way that point documents;
//! - `pause(dir)`: creates `dir/<name>.reached` and waits until
//!   `dir/<name>.go` exists, so that a test can act while the process stands
//!   still at that point.
//!
//! Without `SLUICE_FAILPOINTS` a point costs two atomic loads. A malformed
//! entry is reported on stderr and ignored: fault points never change a
//! production run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The environment variable that configures fault points.
pub const ENV: &str = "SLUICE_FAILPOINTS";

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Off,
    Exit(i32),
    Error(String),
    Pause(PathBuf),
}

#[derive(Debug)]
struct Point {
    /// Hits left before the point turns off; `None` for every hit.
    remaining: Option<u64>,
    action: Action,
}

/// Whether any point is set: the fast path of [`hit`] reads only this.
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn registry() -> &'static Mutex<HashMap<String, Point>> {
    static POINTS: OnceLock<Mutex<HashMap<String, Point>>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let spec = std::env::var(ENV).unwrap_or_default();
        let (points, errors) = parse(&spec);
        for e in errors {
            eprintln!("sluice: {ENV}: {e}; ignored");
        }
        ACTIVE.store(!points.is_empty(), Ordering::SeqCst);
        Mutex::new(points)
    })
}

fn parse(spec: &str) -> (HashMap<String, Point>, Vec<String>) {
    let mut points = HashMap::new();
    let mut errors = Vec::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        match parse_entry(entry) {
            Ok((name, point)) => {
                points.insert(name, point);
            }
            Err(e) => errors.push(format!("`{entry}`: {e}")),
        }
    }
    (points, errors)
}

fn parse_entry(entry: &str) -> Result<(String, Point), String> {
    let (name, rest) = entry.split_once('=').ok_or("expected name=action")?;
    let (remaining, action) = match rest.split_once('*') {
        Some((n, a)) => (Some(n.trim().parse::<u64>().map_err(|_| format!("`{n}` is not a count"))?), a),
        None => (None, rest),
    };
    let action = action.trim();
    let (kind, arg) = match action.split_once('(') {
        Some((k, a)) => (k, Some(a.strip_suffix(')').ok_or("missing `)`")?)),
        None => (action, None),
    };
    let action = match (kind, arg) {
        ("off", None) => Action::Off,
        ("exit", None) => Action::Exit(137),
        ("exit", Some(c)) => Action::Exit(c.parse().map_err(|_| format!("`{c}` is not an exit code"))?),
        ("error", arg) => Action::Error(arg.unwrap_or("injected failure").to_string()),
        ("pause", Some(dir)) if !dir.is_empty() => Action::Pause(PathBuf::from(dir)),
        _ => return Err(format!("unknown action `{action}`; use off, exit, error or pause(dir)")),
    };
    Ok((name.trim().to_string(), Point { remaining, action }))
}

/// Passes fault point `name`. Returns `Some(message)` when the point is set to
/// `error`; exits or pauses here when it is set to do so.
pub fn hit(name: &str) -> Option<String> {
    hit_in(name, "")
}

/// [`hit`], where an entry `name@scope` (for example a job directory's URI)
/// applies only to this scope, ahead of a plain `name` entry.
pub fn hit_in(name: &str, scope: &str) -> Option<String> {
    let registry = registry();
    if !ACTIVE.load(Ordering::Relaxed) {
        return None;
    }
    let action = {
        let Ok(mut points) = registry.lock() else { return None };
        let scoped = format!("{name}@{scope}");
        let key = if !scope.is_empty() && points.contains_key(&scoped) { scoped.as_str() } else { name };
        let point = points.get_mut(key)?;
        match &mut point.remaining {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        point.action.clone()
    };
    match action {
        Action::Off => None,
        Action::Exit(code) => {
            eprintln!("sluice: fault point `{name}`: exit({code})");
            std::process::exit(code)
        }
        Action::Error(message) => Some(format!("fault point `{name}`: {message}")),
        Action::Pause(dir) => {
            eprintln!("sluice: fault point `{name}`: paused until {}/{name}.go exists", dir.display());
            let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
            while !dir.join(format!("{name}.go")).exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        }
    }
}

/// Sets a fault point in this process, for unit tests; processes use [`ENV`].
pub fn set(name: &str, spec: &str) {
    let (points, errors) = parse(&format!("{name}={spec}"));
    assert!(errors.is_empty(), "{errors:?}");
    if let Ok(mut r) = registry().lock() {
        r.extend(points);
    }
    ACTIVE.store(true, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_counts_and_arguments() {
        let (p, errors) = parse("a=exit; b=2*error(boom);c=pause(/tmp/x) ;d=off;e=exit(3)");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p["a"].action, Action::Exit(137));
        assert_eq!((p["b"].remaining, &p["b"].action), (Some(2), &Action::Error("boom".into())));
        assert_eq!(p["c"].action, Action::Pause("/tmp/x".into()));
        assert_eq!(p["d"].action, Action::Off);
        assert_eq!(p["e"].action, Action::Exit(3));
        let (p, errors) = parse("x;y=explode;z=pause();w=n*exit");
        assert!(p.is_empty());
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[1].contains("unknown action `explode`"), "{errors:?}");
    }

    #[test]
    fn a_counted_point_turns_off() {
        set("t", "2*error");
        set("t@here", "1*error(scoped)");
        assert!(hit_in("t", "here").is_some_and(|m| m.contains("scoped")));
        assert!(hit("t").is_some_and(|m| m.contains("fault point `t`")));
        assert!(hit("t").is_some());
        assert_eq!(hit("t"), None);
        assert_eq!(hit("unset"), None);
    }
}
