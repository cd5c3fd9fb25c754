//! Domain parameters (`api_gateway_core::domain::Param`) as SPI arguments.
use api_gateway_core::domain::Param;
use pgrx::datum::DatumWithOid;

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
