use crate::{AppState, error::ApiError};
use axum::{Json, extract::State};
use serde_json::{Value, json};

/// `GET /health/live`: the process runs.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`: the database answers and has the extension.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let client = state.pool.get().await?;
    client
        .query_one("SELECT api_gateway.version()", &[])
        .await?;
    Ok(Json(json!({"status": "ok"})))
}
