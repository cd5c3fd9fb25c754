//! SQL integration tests: the extension's functions called over a real connection.
mod admin;
mod data;
mod foundation;
mod gate;
mod observability;
mod rate_limit;
mod webhooks;
