//! One error type for every handler, rendered as an RFC 9457 problem body.
//! SQLSTATEs map to HTTP statuses through one fixed table (PostgREST style); 5xx bodies never carry SQL text.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    #[error("database error {sqlstate}: {message}")]
    Database { sqlstate: String, message: String },
    #[error("not found")]
    NotFound,
}

/// HTTP status for a SQLSTATE raised by the extension or PostgreSQL.
pub fn status_for_sqlstate(code: &str) -> StatusCode {
    match code {
        "42501" => StatusCode::FORBIDDEN,
        "28000" | "28P01" => StatusCode::UNAUTHORIZED,
        "23505" | "23503" | "40001" | "40P01" | "55P03" => StatusCode::CONFLICT,
        "02000" | "P0002" => StatusCode::NOT_FOUND,
        "57014" => StatusCode::GATEWAY_TIMEOUT,
        c if c.starts_with("22") || c.starts_with("23") || c == "42703" || c == "42P01" => {
            StatusCode::BAD_REQUEST
        }
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        tracing::warn!("pool: {err}");
        ApiError::DatabaseUnavailable
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => ApiError::Database {
                sqlstate: db.code().code().to_string(),
                message: db.message().to_string(),
            },
            None => {
                tracing::warn!("database connection: {err}");
                ApiError::DatabaseUnavailable
            }
        }
    }
}

pub fn problem(status: StatusCode, kind: &str, title: &str, detail: Option<String>) -> Response {
    let mut body = json!({
        "type": format!("https://api-gateway.dev/problems/{kind}"),
        "title": title,
        "status": status.as_u16(),
    });
    if let Some(detail) = detail {
        body["detail"] = json!(detail);
    }
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::DatabaseUnavailable => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "Database unavailable",
                Some("the database cannot be reached right now; retry later".into()),
            ),
            ApiError::NotFound => problem(StatusCode::NOT_FOUND, "not-found", "Not Found", None),
            ApiError::Database { sqlstate, message } => {
                let status = status_for_sqlstate(&sqlstate);
                if status.is_server_error() {
                    tracing::error!(sqlstate, "database error: {message}");
                    let mut r = problem(status, "internal", "Internal error", None);
                    if let Ok(v) = HeaderValue::from_str(&sqlstate) {
                        r.headers_mut().insert("x-sqlstate", v);
                    }
                    r
                } else {
                    let mut r = problem(status, "database", "Request refused", Some(message));
                    if let Ok(v) = HeaderValue::from_str(&sqlstate) {
                        r.headers_mut().insert("x-sqlstate", v);
                    }
                    r
                }
            }
        }
    }
}
