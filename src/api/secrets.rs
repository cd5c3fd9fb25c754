//! Random identifiers and secrets for the SQL-language functions (CSPRNG of the OS).
use pgrx::prelude::*;

#[pg_extern(volatile, parallel_safe)]
fn _new_client_id() -> String {
    api_gateway_core::secrets::new_client_id()
}

#[pg_extern(volatile, parallel_safe)]
fn _new_client_secret() -> String {
    api_gateway_core::secrets::new_client_secret()
}
