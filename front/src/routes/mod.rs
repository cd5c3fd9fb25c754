//! Routes. Handlers are thin: one SQL call each, translated to HTTP.
pub mod health;
pub mod ping;
