//! Domain parameters (`api_gateway_core::domain::Param`) as SPI arguments.
use api_gateway_core::domain::Param;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgBuiltInOids;

pub fn datums(params: &[Param]) -> Vec<DatumWithOid<'_>> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(v) => (*v).into(),
            Param::Float(v) => (*v).into(),
            Param::Text(v) => v.as_str().into(),
            Param::Bool(v) => (*v).into(),
            Param::IntArray(v) => v.clone().into(),
            Param::TextArray(v) => v.clone().into(),
        })
        .collect()
}

/// The SQL types of the parameters, for preparing a statement once and reusing it.
pub fn types(params: &[Param]) -> Vec<PgBuiltInOids> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(_) => PgBuiltInOids::INT8OID,
            Param::Float(_) => PgBuiltInOids::FLOAT8OID,
            Param::Text(_) => PgBuiltInOids::TEXTOID,
            Param::Bool(_) => PgBuiltInOids::BOOLOID,
            Param::IntArray(_) => PgBuiltInOids::INT8ARRAYOID,
            Param::TextArray(_) => PgBuiltInOids::TEXTARRAYOID,
        })
        .collect()
}
