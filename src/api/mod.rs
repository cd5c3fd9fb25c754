//! The SQL surface, one module per concern.
pub mod settings;
