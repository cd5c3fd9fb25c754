//! `GET /api/v1/<model>/fields`: the model's fields as Odoo's `fields_get` describes them to the
//! caller (`api_gateway.fields_get`), in the language of `lang=` or `Accept-Language` (else the
//! user's), each with `source`: `sql` or `odoo` (needs `--odoo-url`). One gated statement.
use super::{conditional, query};
use crate::error::ApiError;
use crate::gate::{self, Ctx, GatedSql};
use crate::{AppState, gated_sql};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tokio_postgres::types::Type;

const FIELDS_GET: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.fields_get(g.uid, $4, \
       coalesce($5, api_gateway.negotiate_language($6))) END"
);

/// `GET /api/v1/<model>/fields?lang=`
pub async fn fields(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let model = super::records::model_path(&ctx, path)?;
    let q = query::parse(raw.as_deref(), &["lang"])?;
    let lang = query::lang(&q)?;
    let accept = query::accept_language(&headers);
    let p = gate::run(
        &state,
        &ctx,
        FIELDS_GET,
        &[
            (&model, Type::TEXT),
            (&lang, Type::TEXT),
            (&accept, Type::TEXT),
        ],
    )
    .await?;
    let g = &p.gate;
    let body: Value = p
        .col::<Option<Value>>(0)?
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut response = conditional::respond(g, &headers, &body, None)?;
    query::vary_language(&mut response);
    Ok(response)
}
