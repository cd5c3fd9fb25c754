//! HTTP tests over real sockets: the front is served on 127.0.0.1:<ephemeral> against the fixture
//! database given by DATABASE_URL (AGW_TEST_FIXTURE=mini for the project's own fixture) and
//! called with a real HTTP client or raw TCP. Every test makes its own clients and tokens with
//! SQL, so the order does not matter.
#[cfg(feature = "admin")]
mod admin;
mod common;
mod conditional;
mod feed;
mod fields;
mod forward;
mod nested;
mod oauth;
mod privileges;
mod records;
mod review;
mod security;
mod server;
