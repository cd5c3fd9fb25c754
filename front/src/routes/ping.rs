use crate::gate::{self, Ctx};
use crate::{AppState, error::ApiError, gated_sql};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

const PING: crate::gate::GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.version() END, \
     to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
);

/// `GET /api/v1/ping`: authenticated (read scope), answered by the database, so it proves the
/// whole path works: `{"pong": true, "user": <uid>, "time": ..., "version": ...}`.
pub async fn ping(State(state): State<AppState>, ctx: Ctx) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let p = gate::run(&state, &ctx, PING, &[]).await?;
    let version: Option<String> = p.col(0)?;
    let time: String = p.col(1)?;
    let g = &p.gate;
    Ok(g.respond(
        StatusCode::OK,
        Some(json!({"pong": true, "user": g.uid, "time": time, "version": version})),
    ))
}
