//! The admin console (issue 9): pages under `/api/gateway/admin/<page>` and their JSON API
//! under `/api/gateway/admin/api/...`, admin only, each call backed by one `api_gateway.admin_*`
//! function (the browser never sends SQL, and no SQL text is built from its input).
//!
//! Authentication is the dashboard's: an Odoo administrator's API key or an OAuth2 token with
//! the `admin` scope, kept by the page in sessionStorage and sent as `Authorization: Bearer`.
//! No cookie carries authority, so a cross-site form or link cannot act on an operator's
//! behalf (CSRF-safe by construction); the changes are POSTs with JSON bodies, which a
//! cross-site page cannot send with that header without a CORS preflight this front refuses
//! unless --cors-origins names it.
//!
//! Every change passes the gate's uid and client id to the SQL function as the actor, and the
//! function writes the audit row (`api_gateway.audit`) in the same transaction as the change.
//!
//! Order of checks: an unknown route is 404, then the admin check (401/403, before the body or
//! the query is looked at, so non-admin callers learn nothing else), then the input (400).
use super::{assets, query, stats};
use crate::error::{ApiError, Problem, kind};
use crate::gate::{Ctx, Gate};
use crate::{AppState, body, webhooks};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

const PAGE: &[u8] = include_bytes!("../../assets/admin/admin.html");
const SCRIPT: &[u8] = include_bytes!("../../assets/admin/admin.js");
const STYLE: &[u8] = include_bytes!("../../assets/admin/admin.css");

/// The console's pages (one path each; the same shell renders them).
pub const PAGES: [&str; 8] = [
    "settings",
    "profiles",
    "clients",
    "tokens",
    "throttles",
    "webhooks",
    "queue",
    "logs",
];

/// Everything from this origin, no inline script or style.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn page_response() -> Response {
    assets::page(PAGE, CSP)
}

/// The shell holds no data: a browser navigating here (which cannot send the bearer
/// credential) gets it and asks for the credential; a request that does carry credentials
/// must be an admin's (401/403 otherwise), like every call of the API.
async fn shell(state: &AppState, ctx: &Ctx) -> Result<Response, ApiError> {
    if ctx.authorization.is_some() {
        let (gate, _client) = crate::gate::admin(state, ctx).await?;
        let mut r = page_response();
        r.headers_mut().extend(gate.rate_headers());
        return Ok(r);
    }
    Ok(page_response())
}

/// `GET /api/gateway/admin` and `/api/gateway/admin/`: the overview (links to every page).
pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Result<Response, ApiError> {
    shell(&state, &ctx).await
}

/// `GET /api/gateway/admin/<page>`
pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !PAGES.contains(&name.as_str()) {
        return Err(Problem::not_found(format!(
            "no such console page; the pages are {}",
            PAGES.join(", ")
        )));
    }
    shell(&state, &ctx).await
}

/// `GET /api/gateway/admin/assets/<file>`
pub async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "admin.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "admin.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Problem::not_found("no such file").into_response(),
    };
    assets::file(content_type, body, "no-cache")
}

// ------------------------------------------------------------------------------------------
// The JSON API
// ------------------------------------------------------------------------------------------

/// The reads: `GET /api/gateway/admin/api/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Settings,
    Users,
    Models,
    Profiles,
    Clients,
    Tokens,
    Throttles,
    Webhooks,
    Queue,
    Logs,
    LogsGrouped,
    LogsCsv,
    Audit,
}

/// Every GET of the API, as documented in docs/admin.md (the HTTP tests walk this list).
pub const READS: [&str; 13] = [
    "settings",
    "users",
    "models",
    "profiles",
    "clients",
    "tokens",
    "throttles",
    "webhooks",
    "queue",
    "logs",
    "logs/grouped",
    "logs.csv",
    "audit",
];

fn read_of(path: &str) -> Option<Read> {
    Some(match path {
        "settings" => Read::Settings,
        "users" => Read::Users,
        "models" => Read::Models,
        "profiles" => Read::Profiles,
        "clients" => Read::Clients,
        "tokens" => Read::Tokens,
        "throttles" => Read::Throttles,
        "webhooks" => Read::Webhooks,
        "queue" => Read::Queue,
        "logs" => Read::Logs,
        "logs/grouped" => Read::LogsGrouped,
        "logs.csv" => Read::LogsCsv,
        "audit" => Read::Audit,
        _ => return None,
    })
}

/// The changes: `POST /api/gateway/admin/api/<path>`. Ids come from the path, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    UpdateSettings,
    UpdateWebhookSettings,
    RotateSigningKey,
    SaveProfile,
    SetProfileActive(i32, bool),
    CreateClient,
    UpdateClient(String),
    RotateClientSecret(String),
    RevokeClientTokens(String),
    RevokeToken(String),
    ResetThrottle,
    CreateWebhook,
    UpdateWebhook(i32),
    SetWebhookActive(i32, bool),
    RotateWebhookSecret(i32),
    TestWebhook(i32),
    ReplayDeadJobs(i32),
    ReplayJob(i64),
    DeleteProfile(i32),
    DeleteClient(String),
    DeleteWebhook(i32),
}

/// Every POST of the API with example ids (the HTTP tests walk this list).
pub const ACTIONS: [&str; 21] = [
    "settings",
    "settings/webhooks",
    "settings/rotate-key",
    "profiles",
    "profiles/2/activate",
    "profiles/2/deactivate",
    "clients",
    "clients/gw_000000000000",
    "clients/gw_000000000000/rotate-secret",
    "clients/gw_000000000000/revoke-tokens",
    "tokens/some-jti/revoke",
    "throttles/reset",
    "webhooks",
    "webhooks/1",
    "webhooks/1/deactivate",
    "webhooks/1/rotate-secret",
    "webhooks/1/test",
    "webhooks/1/replay-dead",
    "profiles/2/delete",
    "clients/gw_000000000000/delete",
    "webhooks/1/delete",
];

fn action_of(path: &str) -> Option<Action> {
    let parts: Vec<&str> = path.split('/').collect();
    let int = |s: &str| s.parse::<i32>().ok().filter(|n| *n > 0);
    Some(match parts.as_slice() {
        ["settings"] => Action::UpdateSettings,
        ["settings", "webhooks"] => Action::UpdateWebhookSettings,
        ["settings", "rotate-key"] => Action::RotateSigningKey,
        ["profiles"] => Action::SaveProfile,
        ["profiles", uid, "activate"] => Action::SetProfileActive(int(uid)?, true),
        ["profiles", uid, "deactivate"] => Action::SetProfileActive(int(uid)?, false),
        ["profiles", uid, "delete"] => Action::DeleteProfile(int(uid)?),
        ["clients", id, "delete"] => Action::DeleteClient(id.to_string()),
        ["webhooks", id, "delete"] => Action::DeleteWebhook(int(id)?),
        ["clients"] => Action::CreateClient,
        ["clients", id] => Action::UpdateClient(id.to_string()),
        ["clients", id, "rotate-secret"] => Action::RotateClientSecret(id.to_string()),
        ["clients", id, "revoke-tokens"] => Action::RevokeClientTokens(id.to_string()),
        ["tokens", jti, "revoke"] => Action::RevokeToken(jti.to_string()),
        ["throttles", "reset"] => Action::ResetThrottle,
        ["webhooks"] => Action::CreateWebhook,
        ["webhooks", id] => Action::UpdateWebhook(int(id)?),
        ["webhooks", id, "activate"] => Action::SetWebhookActive(int(id)?, true),
        ["webhooks", id, "deactivate"] => Action::SetWebhookActive(int(id)?, false),
        ["webhooks", id, "rotate-secret"] => Action::RotateWebhookSecret(int(id)?),
        ["webhooks", id, "test"] => Action::TestWebhook(int(id)?),
        ["webhooks", id, "replay-dead"] => Action::ReplayDeadJobs(int(id)?),
        ["queue", id, "replay"] => Action::ReplayJob(id.parse::<i64>().ok().filter(|n| *n > 0)?),
        _ => return None,
    })
}

impl Action {
    /// Whether the action reads a JSON object body.
    fn takes_body(&self) -> bool {
        matches!(
            self,
            Action::UpdateSettings
                | Action::UpdateWebhookSettings
                | Action::SaveProfile
                | Action::CreateClient
                | Action::UpdateClient(_)
                | Action::ResetThrottle
                | Action::CreateWebhook
                | Action::UpdateWebhook(_)
        )
    }
}

/// A value an action binds after the actor's uid (`$1`) and client id (`$2`).
enum Arg {
    Int(i32),
    BigInt(i64),
    Text(String),
    Bool(bool),
    Float(f64),
    Json(Value),
}

impl Arg {
    fn bind(&self) -> (&(dyn ToSql + Sync), Type) {
        match self {
            Arg::Int(v) => (v, Type::INT4),
            Arg::BigInt(v) => (v, Type::INT8),
            Arg::Text(v) => (v, Type::TEXT),
            Arg::Bool(v) => (v, Type::BOOL),
            Arg::Float(v) => (v, Type::FLOAT8),
            Arg::Json(v) => (v, Type::JSONB),
        }
    }
}

/// What one action runs: one `api_gateway.admin_*` statement, its arguments after the actor,
/// the status of success and how its row becomes the answer.
struct Call {
    sql: &'static str,
    args: Vec<Arg>,
    status: StatusCode,
    reply: Box<dyn FnOnce(&Row) -> Value + Send>,
    /// A `field` the function names that the console knows under another name.
    field_alias: Option<(&'static str, &'static str)>,
}

fn call(
    sql: &'static str,
    args: Vec<Arg>,
    status: StatusCode,
    reply: impl FnOnce(&Row) -> Value + Send + 'static,
) -> Call {
    Call {
        sql,
        args,
        status,
        reply: Box::new(reply),
        field_alias: None,
    }
}

/// The function's own JSON answer.
fn row_json(row: &Row) -> Value {
    row.get(0)
}

fn bad_body(field: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_BODY)
        .detail(detail)
        .member("field", field)
}

impl Action {
    /// The table of actions: each one's statement, arguments, success status and answer.
    fn call(self, body: Value) -> Result<Call, Problem> {
        use Action::*;
        use Arg::{BigInt, Bool, Float, Int, Json, Text};
        const OK: StatusCode = StatusCode::OK;
        const CREATED: StatusCode = StatusCode::CREATED;
        Ok(match self {
            UpdateSettings => call(
                "SELECT api_gateway.admin_update_settings($1::int, $2::text, $3::jsonb)",
                vec![Json(body)],
                OK,
                row_json,
            ),
            UpdateWebhookSettings => call(
                "SELECT api_gateway.admin_update_webhook_settings($1::int, $2::text, $3::jsonb)",
                vec![Json(body)],
                OK,
                row_json,
            ),
            RotateSigningKey => call(
                "SELECT api_gateway.admin_rotate_signing_key($1::int, $2::text)",
                vec![],
                OK,
                |row| json!({"jwt_kid": row.get::<_, String>(0)}),
            ),
            SaveProfile => call(
                "SELECT api_gateway.admin_save_profile($1::int, $2::text, $3::jsonb)",
                vec![Json(body)],
                OK,
                row_json,
            ),
            SetProfileActive(user_id, active) => call(
                "SELECT api_gateway.admin_set_profile_active($1::int, $2::text, $3::int, $4::bool)::text",
                vec![Int(user_id), Bool(active)],
                OK,
                move |_| json!({"user_id": user_id, "active": active}),
            ),
            DeleteProfile(user_id) => call(
                "SELECT api_gateway.admin_delete_profile($1::int, $2::text, $3::int)::text",
                vec![Int(user_id)],
                OK,
                move |_| json!({"user_id": user_id, "deleted": true}),
            ),
            CreateClient => call(
                "SELECT api_gateway.admin_create_client($1::int, $2::text, $3::jsonb)",
                vec![Json(body)],
                CREATED,
                row_json,
            ),
            UpdateClient(id) => call(
                "SELECT api_gateway.admin_update_client($1::int, $2::text, $3::text, $4::jsonb)",
                vec![Text(id), Json(body)],
                OK,
                row_json,
            ),
            RotateClientSecret(id) => call(
                "SELECT api_gateway.admin_rotate_client_secret($1::int, $2::text, $3::text)",
                vec![Text(id.clone())],
                OK,
                move |row| json!({"client_id": id, "client_secret": row.get::<_, String>(0)}),
            ),
            RevokeClientTokens(id) => call(
                "SELECT api_gateway.admin_revoke_client_tokens($1::int, $2::text, $3::text)",
                vec![Text(id)],
                OK,
                |row| json!({"revoked": row.get::<_, i32>(0)}),
            ),
            DeleteClient(id) => call(
                "SELECT api_gateway.admin_delete_client($1::int, $2::text, $3::text)::text",
                vec![Text(id.clone())],
                OK,
                move |_| json!({"client_id": id, "deleted": true}),
            ),
            RevokeToken(jti) => call(
                "SELECT api_gateway.admin_revoke_token($1::int, $2::text, $3::text)",
                vec![Text(jti)],
                OK,
                |row| json!({"revoked": row.get::<_, bool>(0)}),
            ),
            ResetThrottle => {
                let subject = body
                    .get("subject")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        bad_body(
                            "subject",
                            "send {\"subject\": \"...\"}: the throttle to reset",
                        )
                    })?;
                call(
                    "SELECT api_gateway.admin_reset_throttle($1::int, $2::text, $3::text)",
                    vec![Text(subject)],
                    OK,
                    |row| json!({"reset": row.get::<_, bool>(0)}),
                )
            }
            CreateWebhook | UpdateWebhook(_) => {
                let mut body = body;
                let status = match self {
                    UpdateWebhook(id) => {
                        body["id"] = json!(id);
                        OK
                    }
                    _ if body.get("id").is_some() => {
                        return Err(bad_body(
                            "id",
                            "a new webhook has no id; POST to webhooks/<id> to change one",
                        ));
                    }
                    _ => CREATED,
                };
                call(
                    "SELECT api_gateway.admin_save_webhook($1::int, $2::text, $3::jsonb)",
                    vec![Json(body)],
                    status,
                    row_json,
                )
            }
            SetWebhookActive(id, active) => call(
                "SELECT api_gateway.admin_set_webhook_active($1::int, $2::text, $3::int, $4::bool)::text",
                vec![Int(id), Bool(active)],
                OK,
                move |_| json!({"id": id, "active": active}),
            ),
            RotateWebhookSecret(id) => {
                // How long the previous secret stays valid (deliveries carry both signatures);
                // the database checks the range (0 to 30 days).
                let overlap_s: f64 = match body.get("overlap_hours") {
                    None | Some(Value::Null) => 86_400.0,
                    Some(v) => v.as_f64().map(|h| h * 3600.0).ok_or_else(|| {
                        bad_body(
                            "overlap_hours",
                            "overlap_hours is a number of hours (0 to 720)",
                        )
                    })?,
                };
                Call {
                    field_alias: Some(("overlap", "overlap_hours")),
                    ..call(
                        "SELECT api_gateway.admin_rotate_webhook_secret($1::int, $2::text, $3::int, make_interval(secs => $4::float8))",
                        vec![Int(id), Float(overlap_s)],
                        OK,
                        move |row| json!({"id": id, "secret": row.get::<_, String>(0), "previous_secret_valid_s": overlap_s}),
                    )
                }
            }
            ReplayDeadJobs(id) => call(
                "SELECT api_gateway.admin_replay_dead_jobs($1::int, $2::text, $3::int)",
                vec![Int(id)],
                OK,
                |row| json!({"replayed": row.get::<_, i32>(0)}),
            ),
            ReplayJob(job) => call(
                "SELECT api_gateway.admin_replay_job($1::int, $2::text, $3::bigint)",
                vec![BigInt(job)],
                OK,
                |row| json!({"replayed": row.get::<_, bool>(0)}),
            ),
            DeleteWebhook(id) => call(
                "SELECT api_gateway.admin_delete_webhook($1::int, $2::text, $3::int)::text",
                vec![Int(id)],
                OK,
                move |_| json!({"id": id, "deleted": true}),
            ),
            // Not one statement: it sends a request (`test_webhook`).
            TestWebhook(_) => unreachable!("the webhook test is not a table action"),
        })
    }
}

/// `webhooks/<id>/test`: the extension makes the test event, the front sends it once.
async fn test_webhook(
    state: &AppState,
    client: deadpool_postgres::Client,
    gate: &Gate,
    id: i32,
) -> Result<(StatusCode, Value), Problem> {
    let row = one_row(
        state,
        &client,
        "SELECT event_id, url, headers, secret, timeout_ms, payload, allow_private \
           FROM api_gateway.admin_webhook_test_event($1::int, $2::text, $3::int)",
        &[
            (&gate.uid, Type::INT4),
            (&gate.client_id, Type::TEXT),
            (&id, Type::INT4),
        ],
    )
    .await?;
    // The connection goes back to the pool before the (possibly slow) POST.
    drop(client);
    let event_id: String = row.get(0);
    let job = webhooks::Job {
        id: 0,
        event_id: event_id.clone(),
        webhook_id: id,
        attempt: 1,
        url: row.get(1),
        headers: row.get(2),
        secret: row.get(3),
        previous_secret: None,
        timeout: Duration::from_millis(row.get::<_, i32>(4).max(100) as u64),
        payload: row.get(5),
    };
    let done = webhooks::send_once(job, row.get(6)).await;
    Ok((
        StatusCode::OK,
        json!({
            "event_id": event_id,
            "delivered": done.outcome == "delivered",
            "status": done.status,
            "error": done.error,
        }),
    ))
}

/// One statement in its own transaction under the statement timeout (one transaction per
/// action: the change and its audit row commit together). A database error keeps the field
/// the function named (`RAISE ... COLUMN`) as the problem's `field` member, for the form.
async fn one_row(
    state: &AppState,
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Row, Problem> {
    let map = |e: tokio_postgres::Error| {
        let field = e.as_db_error().and_then(|d| d.column()).map(str::to_string);
        let p = Problem::from(e);
        match field {
            Some(f) if p.status.is_client_error() => p.member("field", f),
            _ => p,
        }
    };
    let timeout = state.config.statement_timeout;
    let begin = format!("BEGIN; SET LOCAL statement_timeout = {}", timeout.ms);
    let (began, rows, committed) = tokio::join!(
        client.batch_execute(&begin),
        client.query_typed(sql, params),
        client.batch_execute("COMMIT"),
    );
    began.map_err(map)?;
    let mut rows = rows.map_err(map)?;
    committed.map_err(map)?;
    if rows.len() != 1 {
        tracing::error!("expected one row, got {}: {sql}", rows.len());
        return Err(Problem::internal());
    }
    Ok(rows.remove(0))
}

fn answer(gate: &Gate, status: StatusCode, body: Value) -> Response {
    let mut r = gate.respond(status, Some(body));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn route_not_found(method: &str) -> Problem {
    Problem::not_found(format!(
        "no such console API route for {method}; see docs/admin.md"
    ))
}

/// The traffic-log filters from the query string, as the JSON object `admin_logs` takes
/// (values as given: the SQL function checks them and names the bad one).
fn log_filters(q: &std::collections::BTreeMap<String, String>) -> Value {
    let mut f = Map::new();
    for key in ["from", "to", "client", "status", "path"] {
        if let Some(v) = q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            f.insert(key.into(), json!(v));
        }
    }
    if let Some(v) = q.get("user").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        f.insert(
            "user".into(),
            v.parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(v)),
        );
    }
    Value::Object(f)
}

fn limit_of(
    q: &std::collections::BTreeMap<String, String>,
    default: i32,
    max: i32,
) -> Result<i32, Problem> {
    match q.get("limit").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Problem::invalid_parameter("limit", format!("limit is a number from 1 to {max}"))
            }),
    }
}

const LOG_PARAMS: [&str; 7] = ["from", "to", "user", "client", "status", "path", "limit"];

/// `GET /api/gateway/admin/api/<read>`
pub async fn get_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let read = read_of(&rest).ok_or_else(|| route_not_found("GET"))?;
    let (gate, client) = crate::gate::admin(&state, &ctx).await?;
    let with = |p: Problem| gate.with_headers(p);
    let raw = raw.as_deref();
    let row = match read {
        Read::Settings
        | Read::Users
        | Read::Models
        | Read::Profiles
        | Read::Clients
        | Read::Throttles
        | Read::Webhooks => {
            query::parse(raw, &[]).map_err(with)?;
            let sql = match read {
                Read::Settings => "SELECT api_gateway.admin_settings()",
                Read::Users => "SELECT api_gateway.admin_odoo_users()",
                Read::Models => "SELECT api_gateway.admin_odoo_models()",
                Read::Profiles => "SELECT api_gateway.admin_profiles()",
                Read::Clients => "SELECT api_gateway.admin_clients()",
                Read::Throttles => "SELECT api_gateway.admin_throttles()",
                _ => "SELECT api_gateway.admin_webhooks()",
            };
            one_row(&state, &client, sql, &[]).await
        }
        Read::Tokens => {
            let q = query::parse(raw, &["client", "all"]).map_err(with)?;
            let client_id = q.get("client").filter(|c| !c.is_empty()).cloned();
            let all = match q.get("all").map(String::as_str) {
                None | Some("") | Some("true") => true,
                Some("false") => false,
                Some(_) => {
                    return Err(with(Problem::invalid_parameter(
                        "all",
                        "all is true (every token) or false (live ones only)",
                    )));
                }
            };
            one_row(
                &state,
                &client,
                "SELECT api_gateway.admin_tokens($1::text, $2::bool, 500)",
                &[(&client_id, Type::TEXT), (&all, Type::BOOL)],
            )
            .await
        }
        Read::Queue => {
            let q = query::parse(raw, &["state", "webhook", "limit"]).map_err(with)?;
            let job_state = q.get("state").filter(|s| !s.is_empty()).cloned();
            let webhook = match q.get("webhook").filter(|s| !s.is_empty()) {
                None => None,
                Some(w) => Some(w.parse::<i32>().map_err(|_| {
                    with(Problem::invalid_parameter(
                        "webhook",
                        "webhook is a webhook id",
                    ))
                })?),
            };
            let limit = limit_of(&q, 200, 5000).map_err(with)?;
            one_row(
                &state,
                &client,
                "SELECT api_gateway.admin_webhook_queue($1::text, $2::int, $3::int)",
                &[
                    (&job_state, Type::TEXT),
                    (&webhook, Type::INT4),
                    (&limit, Type::INT4),
                ],
            )
            .await
        }
        Read::Logs | Read::LogsCsv => {
            let q = query::parse(raw, &LOG_PARAMS).map_err(with)?;
            let filters = log_filters(&q);
            let (default, max) = if read == Read::LogsCsv {
                (10000, 10000)
            } else {
                (200, 2000)
            };
            let limit = limit_of(&q, default, max).map_err(with)?;
            let row = one_row(
                &state,
                &client,
                "SELECT api_gateway.admin_logs($1::jsonb, $2::int)",
                &[(&filters, Type::JSONB), (&limit, Type::INT4)],
            )
            .await
            .map_err(with)?;
            if read == Read::LogsCsv {
                return Ok(stats::log_csv(
                    &gate,
                    &row.get::<_, Value>(0),
                    "api-gateway-traffic.csv",
                ));
            }
            Ok(row)
        }
        Read::LogsGrouped => {
            let mut allowed = LOG_PARAMS.to_vec();
            allowed.push("by");
            let q = query::parse(raw, &allowed).map_err(with)?;
            let by = q.get("by").cloned();
            one_row(
                &state,
                &client,
                "SELECT api_gateway.admin_logs_grouped($1::jsonb, $2::text)",
                &[(&log_filters(&q), Type::JSONB), (&by, Type::TEXT)],
            )
            .await
        }
        Read::Audit => {
            let q = query::parse(raw, &["limit"]).map_err(with)?;
            let limit = limit_of(&q, 100, 5000).map_err(with)?;
            one_row(
                &state,
                &client,
                "SELECT api_gateway.admin_audit($1::int)",
                &[(&limit, Type::INT4)],
            )
            .await
        }
    }
    .map_err(with)?;
    Ok(answer(&gate, StatusCode::OK, row.get(0)))
}

/// `POST /api/gateway/admin/api/<action>`
pub async fn post_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, ApiError> {
    let action = action_of(&rest).ok_or_else(|| route_not_found("POST"))?;
    let (gate, client) = crate::gate::admin(&state, &ctx).await?;
    let with = |p: Problem| gate.with_headers(p);
    query::parse(raw.as_deref(), &[]).map_err(with)?;
    // Rotating a webhook secret takes an optional body ({"overlap_hours": n}).
    let optional_body = matches!(action, Action::RotateWebhookSecret(_))
        && headers.contains_key(header::CONTENT_TYPE);
    let args: Value = if action.takes_body() || optional_body {
        body::json_object(&headers, request_body, state.config.body_limit)
            .await
            .map_err(with)?
    } else {
        Value::Null
    };
    let (status, body) = match action {
        Action::TestWebhook(id) => test_webhook(&state, client, &gate, id)
            .await
            .map_err(with)?,
        action => {
            let call = action.call(args).map_err(with)?;
            let mut params: Vec<(&(dyn ToSql + Sync), Type)> =
                vec![(&gate.uid, Type::INT4), (&gate.client_id, Type::TEXT)];
            params.extend(call.args.iter().map(Arg::bind));
            let row = one_row(&state, &client, call.sql, &params)
                .await
                .map_err(|p| match call.field_alias {
                    Some((from, to))
                        if p.extra.get("field").and_then(Value::as_str) == Some(from) =>
                    {
                        with(p.member("field", to))
                    }
                    _ => with(p),
                })?;
            (call.status, (call.reply)(&row))
        }
    };
    Ok(answer(&gate, status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_resolves() {
        for r in READS {
            assert!(read_of(r).is_some(), "{r}");
        }
        for a in ACTIONS {
            assert!(action_of(a).is_some(), "{a}");
        }
        assert_eq!(action_of("queue/12/replay"), Some(Action::ReplayJob(12)));
        assert_eq!(
            action_of("profiles/5/deactivate"),
            Some(Action::SetProfileActive(5, false))
        );
    }

    #[test]
    fn bad_ids_and_unknown_routes_do_not_resolve() {
        for bad in [
            "",
            "webhooks/x/test",
            "webhooks/0",
            "webhooks/-1/test",
            "queue/abc/replay",
            "profiles/x/delete",
            "webhooks/0/delete",
            "clients/a/b/c",
            "sql",
        ] {
            assert!(action_of(bad).is_none(), "{bad}");
        }
        assert!(read_of("logs/../settings").is_none());
    }

    #[test]
    fn log_filters_keep_only_known_non_empty_values() {
        let mut q = std::collections::BTreeMap::new();
        q.insert("user".to_string(), "5".to_string());
        q.insert("path".to_string(), " partner ".to_string());
        q.insert("status".to_string(), String::new());
        assert_eq!(log_filters(&q), json!({"user": 5, "path": "partner"}));
        q.insert("user".to_string(), "x".to_string());
        assert_eq!(log_filters(&q)["user"], json!("x"));
    }
}
