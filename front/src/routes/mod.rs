//! Routes. Handlers are thin: one SQL statement each (gate + data call), translated to HTTP.
#[cfg(feature = "admin")]
pub mod admin;
pub mod assets;
pub mod conditional;
#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod docs;
pub mod forward;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod ping;
pub mod query;
pub mod records;
#[cfg(feature = "dashboard")]
pub mod stats;
