//! Log lines through the host.
//!
//! A plugin has no log file and its stderr is only captured for diagnostics; the host writes
//! these lines with the plugin's name and masks national identity numbers in them, so this is
//! the one place a plugin should say what it did. One function per level keeps call sites
//! short (`log::info(&format!(…))`).

pub use crate::bindings::eformidling::transport::log::{Level, log};

/// Writes `message` at level trace.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes `message` at level debug.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` at level info.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` at level warn.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` at level error.
pub fn error(message: &str) {
    log(Level::Error, message);
}
