//! `/api/v1/<model>` and `/api/v1/<model>/<id>`: search_read, read, create, write, unlink. Each is
//! one statement: the gate and, on a pass, the data function.
use super::forward::{self, Call, Shape};
use super::{conditional, query};
use crate::error::{ApiError, Problem};
use crate::gate::{self, Ctx, GatedSql};
use crate::{AppState, body, gated_sql};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio_postgres::types::Type;

const SEARCH_READ: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, $4, $5, $6, $7, $8, $9) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5) END"
);
const SEARCH_PAGE: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.search_page(g.uid, $4, $5, $6, $7, $8, $9) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5) END"
);
const CHANGES: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.changes(g.uid, $4, $5, $6, $7) END");
const READ: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.read_versioned(g.uid, $4, $5, $6) END");
const CREATE: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.\"create\"(g.uid, $4, $5) END");
const WRITE: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.\"write\"(g.uid, $4, $5, $6) END");
const UNLINK: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.unlink(g.uid, $4, $5) END");
const WRITE_IF_MATCH: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.write_if_match(g.uid, $4, $5, $6, $7) END"
);
const UNLINK_IF_MATCH: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.unlink_if_match(g.uid, $4, $5, $6) END");

/// The answer to a write or unlink: 204, 404, or 412 when `If-Match` no longer held.
fn written(
    g: &gate::Gate,
    outcome: Option<&str>,
    model: &str,
    id: i32,
) -> Result<Response, ApiError> {
    match outcome {
        Some("done") => Ok(g.respond(StatusCode::NO_CONTENT, None)),
        Some("changed") => Err(g.with_headers(conditional::precondition_failed(model, id))),
        _ => Err(g.with_headers(missing(model, id))),
    }
}

fn path_problem(e: PathRejection) -> Problem {
    Problem::not_found(format!("bad path: {}", e.body_text()))
}

fn missing(model: &str, id: i32) -> Problem {
    Problem::not_found(format!(
        "{model} {id} does not exist or is not visible to this user"
    ))
}

/// `GET /api/v1/<model>?domain=&fields=&limit=&offset=&order=&count=`
pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path(model) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let q = query::parse(
        raw.as_deref(),
        &[
            "domain", "fields", "limit", "offset", "order", "count", "after",
        ],
    )?;
    let domain = q
        .get("domain")
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "[]".to_string());
    let fields = query::fields(&q)?;
    let limit = query::non_negative(&q, "limit")?;
    let offset = query::non_negative(&q, "offset")?.unwrap_or(0);
    let order = q
        .get("order")
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty());
    let count = query::boolean(&q, "count")?;
    // `after` (empty on the first page) asks for keyset pagination: a signed cursor for the
    // next page. Plain lists stay on `search_read`, whose statement the extension caches.
    if q.contains_key("after") && !q.contains_key("offset") {
        let after = q.get("after").cloned().filter(|a| !a.is_empty());
        let p = gate::run(
            &state,
            &ctx,
            SEARCH_PAGE,
            &[
                (&model, Type::TEXT),
                (&domain, Type::TEXT),
                (&fields, Type::TEXT_ARRAY),
                (&limit, Type::INT4),
                (&order, Type::TEXT),
                (&after, Type::TEXT),
                (&count, Type::BOOL),
            ],
        )
        .await?;
        let page: Option<Value> = p.col(0)?;
        let total: Option<i64> = p.col(1)?;
        let g = &p.gate;
        let mut page = page.unwrap_or_else(|| json!({"records": [], "next": null}));
        if count {
            page["count"] = json!(total.unwrap_or(0));
        }
        let next = page["next"].as_str().map(str::to_string);
        let mut response = conditional::respond(g, &headers, &page, None)?;
        if let Some(link) = next.and_then(|c| query::next_link(&model, raw.as_deref(), &c)) {
            response.headers_mut().insert(header::LINK, link);
        }
        return Ok(response);
    }
    if q.contains_key("after") {
        return Err(Problem::invalid_parameter(
            "after",
            "after (a cursor) and offset cannot be combined",
        ));
    }
    let p = gate::run(
        &state,
        &ctx,
        SEARCH_READ,
        &[
            (&model, Type::TEXT),
            (&domain, Type::TEXT),
            (&fields, Type::TEXT_ARRAY),
            (&limit, Type::INT4),
            (&offset, Type::INT4),
            (&order, Type::TEXT),
            (&count, Type::BOOL),
        ],
    )
    .await?;
    let records: Option<Value> = p.col(0)?;
    let total: Option<i64> = p.col(1)?;
    let g = &p.gate;
    let mut body = json!({"records": records.unwrap_or_else(|| json!([]))});
    if count {
        body["count"] = json!(total.unwrap_or(0));
    }
    conditional::respond(g, &headers, &body, None)
}

/// `GET /api/v1/<model>/changes?since=&fields=&limit=`: the change feed (the DBA enables it per
/// model): `{"records": [...], "deleted": [ids], "next": "<cursor>", "more": bool}`. Without
/// `since`, a new feed: no change, and the cursor of this moment.
pub async fn changes(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path(model) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let q = query::parse(raw.as_deref(), &["since", "fields", "limit"])?;
    let since = q.get("since").cloned().filter(|s| !s.is_empty());
    let fields = query::fields(&q)?;
    let limit = query::non_negative(&q, "limit")?;
    let p = gate::run(
        &state,
        &ctx,
        CHANGES,
        &[
            (&model, Type::TEXT),
            (&since, Type::TEXT),
            (&fields, Type::TEXT_ARRAY),
            (&limit, Type::INT4),
        ],
    )
    .await?;
    let body: Option<Value> = p.col(0)?;
    Ok(p.gate.respond(StatusCode::OK, body))
}

/// `GET /api/v1/<model>/<id>?fields=`
pub async fn read(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path((model, id)) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let id = query::record_id(&id)?;
    let q = query::parse(raw.as_deref(), &["fields"])?;
    let fields = query::fields(&q)?;
    let p = gate::run(
        &state,
        &ctx,
        READ,
        &[
            (&model, Type::TEXT),
            (&id, Type::INT4),
            (&fields, Type::TEXT_ARRAY),
        ],
    )
    .await?;
    let g = &p.gate;
    match p.col::<Option<Value>>(0)? {
        Some(v) if v["record"].is_object() => {
            let version = v["version"].as_str().unwrap_or("0");
            conditional::respond(g, &headers, &v["record"], Some(version))
        }
        _ => Err(g.with_headers(missing(&model, id))),
    }
}

/// `POST /api/v1/<model>` with a JSON object: 201, `{"id": N}` and `Location`.
pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path(model) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    query::parse(raw.as_deref(), &[])?;
    let vals = body::json_object(&headers, body, state.config.body_limit).await?;
    if state.odoo.is_some() {
        let call = Call {
            body: json!({"vals_list": [vals]}),
            method: "create".into(),
            shape: Shape::Created {
                model: model.clone(),
            },
            model,
        };
        return forward::forward(&state, &ctx, &headers, call).await;
    }
    let p = gate::run(
        &state,
        &ctx,
        CREATE,
        &[(&model, Type::TEXT), (&vals, Type::JSONB)],
    )
    .await?;
    let g = &p.gate;
    let id: Option<i32> = p.col(0)?;
    let Some(id) = id else {
        tracing::error!("{model}: create returned NULL");
        return Err(g.with_headers(Problem::internal()));
    };
    let mut response = g.respond(StatusCode::CREATED, Some(json!({"id": id})));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/{model}/{id}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `PUT`/`PATCH /api/v1/<model>/<id>` with a JSON object of the fields to change: 204.
pub async fn write(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path((model, id)) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let id = query::record_id(&id)?;
    query::parse(raw.as_deref(), &[])?;
    let versions = conditional::if_match(&headers)?;
    let vals = body::json_object(&headers, body, state.config.body_limit).await?;
    if state.odoo.is_some() {
        refuse_conditional_forward(versions.is_some())?;
        let call = Call {
            model,
            method: "write".into(),
            body: json!({"ids": [id], "vals": vals}),
            shape: Shape::NoContent,
        };
        return forward::forward(&state, &ctx, &headers, call).await;
    }
    if let Some(versions) = versions {
        let p = gate::run(
            &state,
            &ctx,
            WRITE_IF_MATCH,
            &[
                (&model, Type::TEXT),
                (&id, Type::INT4),
                (&vals, Type::JSONB),
                (&versions, Type::TEXT_ARRAY),
            ],
        )
        .await?;
        return written(&p.gate, p.col::<Option<&str>>(0)?, &model, id);
    }
    let p = gate::run(
        &state,
        &ctx,
        WRITE,
        &[
            (&model, Type::TEXT),
            (&id, Type::INT4),
            (&vals, Type::JSONB),
        ],
    )
    .await?;
    let g = &p.gate;
    match p.col::<Option<bool>>(0)? {
        Some(true) => Ok(g.respond(StatusCode::NO_CONTENT, None)),
        _ => Err(g.with_headers(missing(&model, id))),
    }
}

/// `DELETE /api/v1/<model>/<id>`: 204.
pub async fn unlink(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path((model, id)) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let id = query::record_id(&id)?;
    query::parse(raw.as_deref(), &[])?;
    let versions = conditional::if_match(&headers)?;
    if state.odoo.is_some() {
        refuse_conditional_forward(versions.is_some())?;
        let call = Call {
            model,
            method: "unlink".into(),
            body: json!({"ids": [id]}),
            shape: Shape::NoContent,
        };
        return forward::forward(&state, &ctx, &headers, call).await;
    }
    if let Some(versions) = versions {
        let p = gate::run(
            &state,
            &ctx,
            UNLINK_IF_MATCH,
            &[
                (&model, Type::TEXT),
                (&id, Type::INT4),
                (&versions, Type::TEXT_ARRAY),
            ],
        )
        .await?;
        return written(&p.gate, p.col::<Option<&str>>(0)?, &model, id);
    }
    let p = gate::run(
        &state,
        &ctx,
        UNLINK,
        &[(&model, Type::TEXT), (&id, Type::INT4)],
    )
    .await?;
    let g = &p.gate;
    match p.col::<Option<bool>>(0)? {
        Some(true) => Ok(g.respond(StatusCode::NO_CONTENT, None)),
        _ => Err(g.with_headers(missing(&model, id))),
    }
}

fn method_name(method: &str) -> Result<String, Problem> {
    if crate::odoo::valid_method(method) {
        Ok(method.to_string())
    } else {
        Err(Problem::not_found(format!(
            "{:?} is not a method name (letters, digits and _)",
            crate::error::truncate(method, 80)
        )))
    }
}

/// `POST /api/v1/<model>/call/<method>` with a JSON object of keyword arguments (and an
/// optional `context`): a model method in Odoo, `{"result": ...}`.
pub async fn call_model(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path((model, method)) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let method = method_name(&method)?;
    query::parse(raw.as_deref(), &[])?;
    let kwargs = body::json_object(&headers, body, state.config.body_limit).await?;
    if state.odoo.is_none() {
        return Err(forward::methods_need_odoo());
    }
    let call = Call {
        model,
        method,
        body: forward::method_body(kwargs, None)?,
        shape: Shape::Result,
    };
    forward::forward(&state, &ctx, &headers, call).await
}

/// `POST /api/v1/<model>/<id>/call/<method>`: a method on one record in Odoo.
pub async fn call_record(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.require_credentials()?;
    let Path((model, id, method)) = path.map_err(path_problem)?;
    let model = query::model(&model)?;
    let id = query::record_id(&id)?;
    let method = method_name(&method)?;
    query::parse(raw.as_deref(), &[])?;
    let kwargs = body::json_object(&headers, body, state.config.body_limit).await?;
    if state.odoo.is_none() {
        return Err(forward::methods_need_odoo());
    }
    let call = Call {
        model,
        method,
        body: forward::method_body(kwargs, Some(id))?,
        shape: Shape::Result,
    };
    forward::forward(&state, &ctx, &headers, call).await
}

/// `If-Match` on a write forwarded to Odoo: the gateway cannot hold its row lock across Odoo's
/// transaction, so rather than check a version Odoo may change before it commits (or ignore
/// the header), such a request is refused.
fn refuse_conditional_forward(conditional: bool) -> Result<(), Problem> {
    if conditional {
        return Err(Problem::new(StatusCode::NOT_IMPLEMENTED, crate::error::kind::NOT_IMPLEMENTED).detail(
            "If-Match is not supported on writes forwarded to Odoo (--odoo-url): send the write without it",
        ));
    }
    Ok(())
}
