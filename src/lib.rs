//! The `api_gateway` PostgreSQL extension: pgrx glue only (type conversion, SPI, error mapping).
//! The logic lives in the pure `api_gateway_core` crate.
mod api;
mod counter;
mod data;
mod error;
mod gate_generation;
mod odoo;
mod one_row;
mod spi;

::pgrx::pg_module_magic!(name, version);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    counter::init();
    gate_generation::init();
}

// Tables, views and grants. `bootstrap` puts the tables first so that functions may name them.
pgrx::extension_sql_file!("sql/schema.sql", name = "schema", bootstrap);
pgrx::extension_sql_file!("sql/gate.sql", name = "gate", requires = ["schema"]);
pgrx::extension_sql_file!(
    "sql/observability.sql",
    name = "observability",
    requires = ["gate"]
);
pgrx::extension_sql_file!(
    "sql/stats.sql",
    name = "stats",
    requires = ["observability"]
);
pgrx::extension_sql_file!(
    "sql/throttles.sql",
    name = "throttles",
    requires = ["gate", api::rate_limit::_shared_counters]
);
pgrx::extension_sql_file!("sql/webhooks.sql", name = "webhooks", requires = ["gate"]);
pgrx::extension_sql_file!("sql/forward.sql", name = "forward", requires = ["gate"]);
pgrx::extension_sql_file!("sql/describe.sql", name = "describe", requires = ["gate"]);
pgrx::extension_sql_file!(
    "sql/security_cache.sql",
    name = "security_cache",
    requires = [
        "gate",
        gate_generation::_gate_change,
        gate_generation::_note_gate_change
    ]
);
pgrx::extension_sql_file!(
    "sql/feed.sql",
    name = "feed",
    requires = ["webhooks", "observability"]
);
pgrx::extension_sql_file!(
    "sql/drop_extension.sql",
    name = "drop_extension",
    requires = ["webhooks", "security_cache", "feed"]
);
pgrx::extension_sql_file!(
    "sql/admin.sql",
    name = "admin",
    requires = ["gate", "throttles", "webhooks", "stats"]
);
pgrx::extension_sql_file!("sql/finalize.sql", name = "finalize", finalize);
