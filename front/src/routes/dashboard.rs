//! `GET /api/gateway/dashboard`: the operators' dashboard (a static page; its data comes from
//! `/api/gateway/stats/...` with the admin credential the page asks for once per browser
//! session and keeps in sessionStorage). Chart.js is the npm package's UMD build, vendored under
//! front/assets/chartjs (checked by sha256 at build time) and embedded: no CDN.
use super::assets;
use crate::error::Problem;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};

const PAGE: &[u8] = include_bytes!("../../assets/dashboard/dashboard.html");
const SCRIPT: &[u8] = include_bytes!("../../assets/dashboard/dashboard.js");
const STYLE: &[u8] = include_bytes!("../../assets/dashboard/dashboard.css");
const CHART: &[u8] = include_bytes!("../../assets/chartjs/chart.umd.min.js");
const CHART_LICENSE: &[u8] = include_bytes!("../../assets/chartjs/LICENSE.md");

/// Everything from this origin; Chart.js sizes its canvases with inline styles.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'none'";

/// `GET /api/gateway/dashboard`
pub async fn page() -> Response {
    assets::page(PAGE, CSP)
}

/// `GET /api/gateway/dashboard/<file>`
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "dashboard.js" => assets::file("text/javascript; charset=utf-8", SCRIPT, "no-cache"),
        "dashboard.css" => assets::file("text/css; charset=utf-8", STYLE, "no-cache"),
        "chart.umd.min.js" => assets::file(
            "text/javascript; charset=utf-8",
            CHART,
            "public, max-age=86400",
        ),
        "chart.js-LICENSE.md" => assets::file(
            "text/plain; charset=utf-8",
            CHART_LICENSE,
            "public, max-age=86400",
        ),
        _ => Problem::not_found("no such file").into_response(),
    }
}
