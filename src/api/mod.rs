//! The SQL surface, one module per concern.
pub mod api_key;
pub mod authenticate;
pub mod data;
pub mod jwt;
pub mod oauth;
pub mod rate_limit;
pub mod secrets;
pub mod settings;
pub mod webhook_capture;
pub mod webhooks;
