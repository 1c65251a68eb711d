//! The Reimbi ⇄ Ashby integration's shared library.
//!
//! - [`domain`]: pure types and rules (no AWS SDK, no Lambda types, no I/O).
//! - [`ports`]: one narrow trait per capability the functions need.
//! - [`adapters`]: implementations of those ports (`<Tech><Port>`), AWS and embedded.
//! - [`config`], [`telemetry`], [`cache`]: wiring helpers shared by the functions.

pub mod adapters;
pub mod cache;
pub mod config;
pub mod domain;
pub mod ports;
pub mod telemetry;

pub use domain::*;
