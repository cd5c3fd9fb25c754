//! The gate: every API request is `api_gateway.authenticate(authorization, client_ip, method)`
//! combined with its data call in one statement, e.g.
//!
//! ```sql
//! WITH g AS MATERIALIZED (SELECT * FROM api_gateway.authenticate($1, $2, $3))
//! SELECT g.status, ..., CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, ...) END FROM g
//! ```
//!
//! A denial is a row (its rate-limit count is kept); the data call only runs on a pass.
use crate::error::{Problem, kind, oauth_description};
use crate::{AppState, net};
use api_gateway_core::gate::{Denial, Scope, required_scope};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use tokio_postgres::Row;

/// The realm of every `WWW-Authenticate` challenge.
pub const REALM: &str = "api";

/// A gated statement in its two forms, built from one data expression that reads `g.status`
/// and `g.uid` (data parameters are `$4`, `$5`, ...):
/// * `combined`: one statement, `WITH g AS (authenticate($1, $2, $3)) SELECT <gate columns>,
///   <data> FROM g` (one round trip, but the caller's rate-limit counter row stays locked until
///   the data call ends, so one user's concurrent requests queue behind each other);
/// * `data`: the data expression alone, `$1` being the uid, run in its own transaction after
///   `authenticate` committed (the default: two short transactions on one connection, two round
///   trips).
#[derive(Debug, Clone, Copy)]
pub struct GatedSql {
    pub combined: &'static str,
    pub data: &'static str,
}

#[macro_export]
macro_rules! gated_sql {
    ($data:expr) => {
        $crate::gate::GatedSql {
            combined: concat!(
                "WITH g AS MATERIALIZED (SELECT * FROM api_gateway.authenticate($1::text, $2::inet, $3::text)) \
                 SELECT g.status, g.uid, g.client_id, g.scopes, g.error, g.rate_limit, g.remaining, g.reset_s, g.detail, g.window_s, ",
                $data,
                " FROM g"
            ),
            data: concat!(
                "WITH g AS (SELECT 200 AS status, $1::int AS uid) SELECT ",
                $data,
                " FROM g"
            ),
        }
    };
}

/// The gate alone.
pub const AUTHENTICATE: &str = "SELECT status, uid, client_id, scopes, error, rate_limit, remaining, reset_s, detail, window_s \
     FROM api_gateway.authenticate($1::text, $2::inet, $3::text)";

/// Number of gate columns before the data columns in the combined form.
pub const GATE_COLUMNS: usize = 10;

/// What the request brings to the gate: its Authorization header, client IP and method.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub authorization: Option<String>,
    pub ip: Option<IpAddr>,
    pub method: Method,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = peer.map(|p| net::client_ip(p, &parts.headers, &state.config.trusted_proxies));
        let given = parts.headers.get_all(header::AUTHORIZATION).iter().count();
        if given > 1 {
            // which credential counts must not depend on header order: refuse (RFC 6750 §3.1)
            return Err(bearer_problem(
                StatusCode::BAD_REQUEST,
                kind::INVALID_AUTHORIZATION,
                Some("invalid_request"),
                &format!("{given} Authorization headers: send exactly one credential"),
                None,
            ));
        }
        let authorization = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| {
                        bearer_problem(
                            StatusCode::UNAUTHORIZED,
                            kind::INVALID_AUTHORIZATION,
                            Some("invalid_request"),
                            "the Authorization header is not ASCII",
                            None,
                        )
                    })?
                    .to_string(),
            ),
        };
        Ok(Ctx {
            authorization,
            ip,
            method: parts.method.clone(),
        })
    }
}

impl Ctx {
    /// 401 without a database call when there is no Authorization header at all.
    pub fn require_credentials(&self) -> Result<(), Problem> {
        match self.authorization.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Ok(()),
            _ => Err(bearer_problem(
                StatusCode::UNAUTHORIZED,
                kind::UNAUTHORIZED,
                None,
                "no credentials: send Authorization: Bearer <access token or Odoo API key>",
                None,
            )),
        }
    }

    /// The method name the gate checks the scope against (HEAD counts as GET).
    pub fn method_name(&self) -> &str {
        self.method.as_str()
    }
}

/// The scope a method needs, for the `scope=` challenge parameter: the gate's own table
/// (`core::gate::required_scope`); a method it does not know is answered 405 before this matters.
pub fn needed_scope(method: &str) -> &'static str {
    required_scope(method).map_or("read", Scope::as_str)
}

/// 401/403 with an RFC 6750 challenge.
pub fn bearer_problem(
    status: StatusCode,
    k: (&'static str, &'static str),
    error: Option<&str>,
    detail: &str,
    scope: Option<&str>,
) -> Problem {
    let mut challenge = format!("Bearer realm=\"{REALM}\"");
    if let Some(error) = error {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            oauth_description(detail)
        ));
    }
    if let Some(scope) = scope {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    let mut p = Problem::new(status, k)
        .detail(detail)
        .header(header::WWW_AUTHENTICATE, &challenge);
    if let Some(error) = error {
        p = p.member("error", error);
    }
    p
}

/// One `authenticate` row.
#[derive(Debug, Clone)]
pub struct Gate {
    pub status: i32,
    pub uid: Option<i32>,
    pub client_id: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub error: Option<String>,
    pub rate_limit: Option<i32>,
    pub remaining: Option<i32>,
    pub reset_s: Option<i32>,
    pub detail: Option<String>,
    /// Length of the rate-limit window in seconds, when a limit applies.
    pub window_s: Option<i32>,
}

impl Gate {
    pub fn from_row(row: &Row) -> Result<Gate, Problem> {
        let get = || -> Result<Gate, tokio_postgres::Error> {
            Ok(Gate {
                status: row.try_get(0)?,
                uid: row.try_get(1)?,
                client_id: row.try_get(2)?,
                scopes: row.try_get(3)?,
                error: row.try_get(4)?,
                rate_limit: row.try_get(5)?,
                remaining: row.try_get(6)?,
                reset_s: row.try_get(7)?,
                detail: row.try_get(8)?,
                window_s: row.try_get(9)?,
            })
        };
        let gate = get().map_err(|e| {
            tracing::error!("unexpected authenticate row: {e}");
            Problem::internal()
        })?;
        crate::obs::note_gate(
            gate.status,
            gate.error.as_deref(),
            gate.uid,
            gate.client_id.as_deref(),
        );
        Ok(gate)
    }

    pub fn passed(&self) -> bool {
        self.status == 200
    }

    /// Which denial this row is (`None` on a pass, or on a row no gate writes).
    pub fn denial_reason(&self) -> Option<Denial> {
        if self.passed() {
            return None;
        }
        Denial::from_row(self.status, self.error.as_deref())
    }

    /// `RateLimit-Policy`/`RateLimit` (draft-ietf-httpapi-ratelimit-headers), when a limit applies.
    pub fn rate_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(limit) = self.rate_limit {
            let remaining = self.remaining.unwrap_or(0).max(0);
            let reset = self.reset_s.unwrap_or(0).max(0);
            let put = |h: &mut HeaderMap, name: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(HeaderName::from_static(name), v);
                }
            };
            let policy = match self.window_s {
                Some(w) => format!("\"default\";q={limit};w={w}"),
                None => format!("\"default\";q={limit}"),
            };
            put(&mut h, "ratelimit-policy", policy);
            put(
                &mut h,
                "ratelimit",
                format!("\"default\";r={remaining};t={reset}"),
            );
        }
        h
    }

    /// The problem for a denial row, with its challenge and rate-limit headers.
    pub fn denial(&self, method: &str) -> Problem {
        let detail = self.detail.clone().unwrap_or_default();
        let error = self.error.as_deref().unwrap_or("");
        let mut p = match self.denial_reason() {
            Some(Denial::MissingCredentials) => bearer_problem(
                StatusCode::UNAUTHORIZED,
                kind::UNAUTHORIZED,
                None,
                &detail,
                None,
            ),
            Some(d @ Denial::InvalidRequest) => bearer_problem(
                StatusCode::UNAUTHORIZED,
                kind::INVALID_AUTHORIZATION,
                Some(d.code()),
                &detail,
                None,
            ),
            Some(d @ Denial::InvalidToken) => bearer_problem(
                StatusCode::UNAUTHORIZED,
                kind::INVALID_TOKEN,
                Some(d.code()),
                &detail,
                None,
            ),
            Some(d @ Denial::InsufficientScope) => bearer_problem(
                StatusCode::FORBIDDEN,
                kind::INSUFFICIENT_SCOPE,
                Some(d.code()),
                &detail,
                Some(needed_scope(method)),
            ),
            Some(d @ Denial::IpNotAllowed) => {
                Problem::new(StatusCode::FORBIDDEN, kind::IP_NOT_ALLOWED)
                    .detail(detail)
                    .member("error", d.code())
            }
            Some(d @ Denial::ProfileInactive) => {
                Problem::new(StatusCode::FORBIDDEN, kind::PROFILE_INACTIVE)
                    .detail(detail)
                    .member("error", d.code())
            }
            Some(d @ Denial::RateLimited) => {
                let retry = self.reset_s.unwrap_or(1).max(1);
                Problem::new(StatusCode::TOO_MANY_REQUESTS, kind::RATE_LIMITED)
                    .detail(detail)
                    .member("error", d.code())
                    .header(header::RETRY_AFTER, &retry.to_string())
            }
            Some(Denial::MethodNotAllowed) => {
                Problem::new(StatusCode::METHOD_NOT_ALLOWED, kind::METHOD_NOT_ALLOWED)
                    .detail(detail)
            }
            None => {
                tracing::error!(status = self.status, error, "unexpected gate status");
                Problem::internal()
            }
        };
        for (name, value) in self.rate_headers() {
            if let Some(name) = name {
                p.headers.insert(name, value);
            }
        }
        p
    }

    /// A successful response carrying the rate-limit headers.
    pub fn respond(&self, status: StatusCode, body: Option<serde_json::Value>) -> Response {
        let mut response = match body {
            Some(b) => (status, axum::Json(b)).into_response(),
            None => status.into_response(),
        };
        response.headers_mut().extend(self.rate_headers());
        response
    }

    /// Decorate a data-call problem with the rate-limit headers of the pass.
    pub fn with_headers(&self, mut p: Problem) -> Problem {
        for (name, value) in self.rate_headers() {
            if let Some(name) = name {
                p.headers.insert(name, value);
            }
        }
        p
    }
}

/// A request that passed the gate, with its data row.
pub struct Passed {
    pub gate: Gate,
    pub row: Row,
    offset: usize,
}

impl Passed {
    /// The `k`-th data column.
    pub fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
        &'a self,
        k: usize,
    ) -> Result<T, Problem> {
        self.row.try_get(self.offset + k).map_err(|e| {
            tracing::error!("unexpected data column {k}: {e}");
            self.gate.with_headers(Problem::internal())
        })
    }
}

/// Authenticate, then run the data call. On a denial, the problem (with its headers) is the
/// error; data-call errors carry the rate-limit headers of the pass.
pub async fn run(
    state: &AppState,
    ctx: &Ctx,
    sql: GatedSql,
    data_params: &crate::db::Params<'_>,
) -> Result<Passed, Problem> {
    use tokio_postgres::types::{ToSql, Type};
    let method = ctx.method_name();
    let timeout = state.config.statement_timeout;
    // Held until the request's database work is over: a throttled IP's turn.
    let turn = state.auth_guard.admit(ctx.ip).await?;
    let conn = state.connection(&ctx.method).await?;
    if state.config.single_statement {
        let mut params = authenticate_params(ctx, &method);
        params.extend(data_params.iter().map(|(v, t)| (*v, t.clone())));
        let row = conn.query_one(timeout, sql.combined, &params).await?;
        let gate = Gate::from_row(&row)?;
        if !gate.passed() {
            drop(conn);
            note_failure(state, ctx, &gate, turn.is_some()).await;
            return Err(gate.denial(method));
        }
        return Ok(Passed {
            gate,
            row,
            offset: GATE_COLUMNS,
        });
    }
    let gate = Gate::from_row(
        &conn
            .query_one(timeout, AUTHENTICATE, &authenticate_params(ctx, &method))
            .await?,
    )?;
    if !gate.passed() {
        drop(conn);
        note_failure(state, ctx, &gate, turn.is_some()).await;
        return Err(gate.denial(method));
    }
    let none: Option<String> = None;
    let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
        (&gate.uid, Type::INT4),
        (&none, Type::TEXT),
        (&none, Type::TEXT),
    ];
    params.extend(data_params.iter().map(|(v, t)| (*v, t.clone())));
    let row = match conn.query_one(timeout, sql.data, &params).await {
        Ok(row) => row,
        Err(p) => return Err(gate.with_headers(p)),
    };
    Ok(Passed {
        gate,
        row,
        offset: 0,
    })
}

/// The gate and what a call forwarded to Odoo needs before it leaves, in ONE statement (one
/// transaction, one round trip): `sql` starts with the gate columns of `authenticate($1, $2, $3)`
/// (as [`GatedSql::combined`]) and its data columns only run on a pass (`CASE WHEN g.status =
/// 200`). Returns the pass with its row and the connection it ran on (kept while an idempotency
/// key is held).
pub async fn pass(
    state: &AppState,
    ctx: &Ctx,
    sql: &str,
    data_params: &crate::db::Params<'_>,
) -> Result<(Passed, deadpool_postgres::Client), Problem> {
    let method = ctx.method_name();
    let turn = state.auth_guard.admit(ctx.ip).await?;
    let client = state.pool.get().await?;
    let mut params = authenticate_params(ctx, &method);
    params.extend(data_params.iter().map(|(v, t)| (*v, t.clone())));
    let row =
        crate::db::query_one_on(&client, state.config.statement_timeout, sql, &params).await?;
    let gate = Gate::from_row(&row)?;
    if !gate.passed() {
        drop(client);
        note_failure(state, ctx, &gate, turn.is_some()).await;
        return Err(gate.denial(method));
    }
    Ok((
        Passed {
            gate,
            row,
            offset: GATE_COLUMNS,
        },
        client,
    ))
}

/// A 401 (credentials the gate could not accept) counts against the client IP
/// (`--auth-failure-limit`); other denials (scope, IP list, quota) do not: the caller is known.
/// A throttled IP (one that had to take a turn) keeps its turn `delay` longer, its database
/// connection already back in the pool.
async fn note_failure(state: &AppState, ctx: &Ctx, gate: &Gate, throttled: bool) {
    if gate.status == 401 {
        state.auth_guard.failed(ctx.ip);
        if throttled {
            tokio::time::sleep(state.auth_guard.delay).await;
        }
    }
}

/// The gate call alone, in its own transaction (the rate-limit count commits at once).
pub async fn authenticate_on(
    client: &deadpool_postgres::Client,
    timeout: crate::db::Timeout,
    ctx: &Ctx,
) -> Result<Gate, Problem> {
    let method = ctx.method_name();
    let params = authenticate_params(ctx, &method);
    let row = crate::db::query_one_on(client, timeout, AUTHENTICATE, &params).await?;
    Gate::from_row(&row)
}

/// The parameters of [`AUTHENTICATE`] (and the first three of every gated statement).
fn authenticate_params<'a>(
    ctx: &'a Ctx,
    method: &'a &'a str,
) -> Vec<(
    &'a (dyn tokio_postgres::types::ToSql + Sync),
    tokio_postgres::types::Type,
)> {
    use tokio_postgres::types::Type;
    vec![
        (&ctx.authorization, Type::TEXT),
        (&ctx.ip, Type::INET),
        (method, Type::TEXT),
    ]
}

/// The admin check of the dashboard's data and of `/metrics`: the gate (as for a GET) must pass
/// and grant the `admin` scope (an OAuth2 token with scope `admin`, or an Odoo administrator's
/// API key). Returns the gate row and the connection it used.
pub async fn admin(
    state: &AppState,
    ctx: &Ctx,
) -> Result<(Gate, deadpool_postgres::Client), Problem> {
    ctx.require_credentials()?;
    let client = state.pool.get().await?;
    let mut as_get = ctx.clone();
    as_get.method = Method::GET;
    let timeout = state.config.statement_timeout;
    let gate = authenticate_on(&client, timeout, &as_get).await?;
    if !gate.passed() {
        return Err(gate.denial("GET"));
    }
    if !gate
        .scopes
        .as_ref()
        .is_some_and(|s| s.iter().any(|x| x == Scope::Admin.as_str()))
    {
        return Err(gate.with_headers(bearer_problem(
            StatusCode::FORBIDDEN,
            kind::INSUFFICIENT_SCOPE,
            Some(Denial::InsufficientScope.code()),
            "this needs the admin scope: an OAuth2 token with scope admin, or an Odoo administrator's API key",
            Some("admin"),
        )));
    }
    Ok((gate, client))
}
