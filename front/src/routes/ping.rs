use crate::{AppState, error::ApiError};
use axum::{Json, extract::State};
use serde_json::{Value, json};

/// `GET /api/v1/ping`: answered by the database, so it proves the whole path works.
pub async fn ping(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT api_gateway.version(), to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
            &[],
        )
        .await?;
    let version: String = row.get(0);
    let time: String = row.get(1);
    Ok(Json(
        json!({"pong": true, "version": version, "time": time}),
    ))
}
