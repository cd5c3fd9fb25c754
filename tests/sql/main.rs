//! SQL integration tests: the extension's functions called over a real connection.
mod admin;
mod cache;
mod conditional;
mod cursor;
mod data;
mod feed;
mod forward;
mod foundation;
mod gate;
mod least_privilege;
mod name_search;
mod observability;
mod rate_limit;
mod read_fidelity;
mod review;
mod webhooks;
