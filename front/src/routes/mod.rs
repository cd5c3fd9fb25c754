//! Routes. Handlers are thin: one SQL statement each (gate + data call), translated to HTTP.
pub mod admin;
pub mod conditional;
pub mod dashboard;
pub mod docs;
pub mod fill;
pub mod forward;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod ping;
pub mod query;
pub mod records;
pub mod stats;
