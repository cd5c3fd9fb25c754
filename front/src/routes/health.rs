use crate::{AppState, db, error::ApiError};
use axum::{Json, extract::State};
use serde_json::{Value, json};

/// `GET /health/live`: the process runs (no database call).
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`: the database answers and has the extension; 503 otherwise.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let timeout = db::Timeout::own(state.config.statement_timeout.ms.clamp(1, 5000));
    let row = db::query_one(&state.pool, timeout, "SELECT api_gateway.version()", &[]).await?;
    let version: String = row.get(0);
    Ok(Json(json!({"status": "ok", "extension": version})))
}
