use pgrx::prelude::*;

/// `api_gateway.version()`: the version of the installed library.
#[pg_extern(immutable, parallel_safe)]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// `api_gateway._new_signing_secret()`: 256 bits from the OS CSPRNG, hex, for JWT signing keys.
#[pg_extern(volatile, parallel_safe)]
fn _new_signing_secret() -> String {
    api_gateway_core::secrets::new_signing_secret()
}
