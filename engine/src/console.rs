//! Lines for the person who started the process: where the state comes from,
//! a restart and its delay, how the job ended. They are `tracing` events of
//! the target [`TARGET`], so that a program embedding the engine sees them
//! through its own subscriber; the `sluice-engine` binary prints them on
//! stderr as `sluice: <line>` whatever `SLUICE_LOG` says ([`layer`]), and its
//! other logs go through `SLUICE_LOG`.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The target of console lines.
pub const TARGET: &str = "sluice::console";

/// A line for the person at the terminal (`format!` syntax).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { ::tracing::info!(target: $crate::console::TARGET, $($arg)*) };
}

/// Prints console lines on stderr as `sluice: <line>`.
pub fn layer<S: tracing::Subscriber>() -> impl Layer<S> {
    Console
}

struct Console;

impl<S: tracing::Subscriber> Layer<S> for Console {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut line = String::new();
        event.record(&mut Message(&mut line));
        eprintln!("sluice: {line}");
    }
}

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}
