//! `GET /api/openapi.json` (the generated document) and `GET /api/docs` (Swagger UI from the npm
//! package swagger-ui-dist, vendored under front/assets and embedded in the binary: no CDN).
use super::assets;
use crate::error::Problem;
use crate::{AppState, openapi};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &[u8] = include_bytes!("../../assets/docs.html");
const INIT: &[u8] = include_bytes!("../../assets/docs-init.js");
const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");
const LICENSE: &[u8] = include_bytes!("../../assets/swagger-ui/LICENSE");

/// The page's policy: everything from this origin; Swagger UI needs inline styles and data: images.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src *; frame-ancestors 'none'; base-uri 'none'";

/// `GET /api/docs`
pub async fn page() -> Response {
    assets::page(PAGE, CSP)
}

/// `GET /api/docs/<file>`: the viewer's files.
pub async fn asset(Path(file): Path<String>) -> Response {
    let day = "public, max-age=86400";
    match file.as_str() {
        "swagger-ui-bundle.js" => assets::file("text/javascript; charset=utf-8", BUNDLE, day),
        "swagger-ui.css" => assets::file("text/css; charset=utf-8", CSS, day),
        "init.js" => assets::file("text/javascript; charset=utf-8", INIT, "no-cache"),
        "LICENSE" => assets::file("text/plain; charset=utf-8", LICENSE, day),
        _ => Problem::not_found("no such file").into_response(),
    }
}

/// `GET /api/openapi.json`
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let doc = match state.openapi.get() {
        Some(doc) => doc,
        None => match openapi::refresh(&state).await {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!("OpenAPI generation failed: {e}");
                return Problem::unavailable().into_response();
            }
        },
    };
    let mut r = (StatusCode::OK, doc.json.clone()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
