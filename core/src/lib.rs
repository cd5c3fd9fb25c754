//! Pure-Rust logic of api_gateway. No pgrx here: everything is unit-tested with plain `cargo test`.

pub mod apikey;
pub mod counter;
pub mod cursor;
pub mod display;
pub mod domain;
pub mod download;
pub mod etag;
pub mod feed;
pub mod field_values;
pub mod fields;
pub mod gate;
pub mod ident;
pub mod jwt;
pub mod lang;
pub mod name_search;
pub mod nested;
pub mod odoo;
pub mod ratelimit;
pub mod rules;
pub mod secrets;
pub mod sliding_window;
pub mod webhook;
pub mod webhook_merge;
