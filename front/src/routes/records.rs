//! `/api/v1/<model>` and `/api/v1/<model>/<id>`: search_read, read, create, write, unlink. Each is
//! one statement: the gate and, on a pass, the data function.
use super::fill::{self, Plan};
use super::forward::{self, Call, Shape};
use super::{conditional, query};
use crate::error::{ApiError, Problem};
use crate::gate::{self, Ctx, GatedSql};
use crate::odoo::SqlReads;
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
const WEB_SEARCH_READ: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.web_search_read(g.uid, $4, $5, $6, $7, $8, $9) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5) END"
);
const WEB_READ: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.web_read_versioned(g.uid, $4, $5, $6) END"
);
const CHANGES: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.changes(g.uid, $4, $5, $6, $7) END");
const READ: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.read_versioned(g.uid, $4, $5, $6) END");
// The same reads in the language of `lang=` ($11 for lists, $7 for a record) or of
// `Accept-Language` ($12, $8), else the user's. Requests that ask for no language keep the
// statements above (their plans and the extension's statement cache stay as they were).
const SEARCH_READ_LANG: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, $4, $5, $6, $7, $8, $9, \
       coalesce($11, api_gateway.negotiate_language($12))) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5, \
       coalesce($11, api_gateway.negotiate_language($12))) END"
);
const SEARCH_PAGE_LANG: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.search_page(g.uid, $4, $5, $6, $7, $8, $9, \
       coalesce($11, api_gateway.negotiate_language($12))) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5, \
       coalesce($11, api_gateway.negotiate_language($12))) END"
);
const READ_LANG: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.read_versioned(g.uid, $4, $5, $6, \
       coalesce($7, api_gateway.negotiate_language($8))) END"
);
// With --odoo-url and a flat field list: SQL reads what it can (`fields_in_sql`) and says what
// Odoo fills (`odoo_fill`), in the same statement, in the request's language as above.
const SEARCH_READ_FILL: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, $4, $5, api_gateway.fields_in_sql(g.uid, $4, $6), $7, $8, $9, \
       coalesce($11, api_gateway.negotiate_language($12))) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5, \
       coalesce($11, api_gateway.negotiate_language($12))) END, \
     CASE WHEN g.status = 200 THEN api_gateway.odoo_fill(g.uid, $4, $6) END"
);
const SEARCH_PAGE_FILL: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.search_page(g.uid, $4, $5, api_gateway.fields_in_sql(g.uid, $4, $6), $7, $8, $9, \
       coalesce($11, api_gateway.negotiate_language($12))) END, \
     CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5, \
       coalesce($11, api_gateway.negotiate_language($12))) END, \
     CASE WHEN g.status = 200 THEN api_gateway.odoo_fill(g.uid, $4, $6) END"
);
const READ_FILL: GatedSql = gated_sql!(
    "CASE WHEN g.status = 200 THEN api_gateway.read_versioned(g.uid, $4, $5, api_gateway.fields_in_sql(g.uid, $4, $6), \
       coalesce($7, api_gateway.negotiate_language($8))) END, \
     CASE WHEN g.status = 200 THEN api_gateway.odoo_fill(g.uid, $4, $6) END"
);
const BINARY_FILE: GatedSql =
    gated_sql!("CASE WHEN g.status = 200 THEN api_gateway.binary_file(g.uid, $4, $5, $6) END");
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

/// A flat read's three statements: with Odoo filling what SQL cannot (`--odoo-url`), in a
/// requested language, and plain. The first two take the language pair (`lang=`,
/// `Accept-Language`) as their last two parameters; the plain one does not. `plan`: the column
/// of the first's answer that says what Odoo fills.
struct FlatRead {
    fill: GatedSql,
    lang: GatedSql,
    plain: GatedSql,
    plan: usize,
}

const LIST: FlatRead = FlatRead {
    fill: SEARCH_READ_FILL,
    lang: SEARCH_READ_LANG,
    plain: SEARCH_READ,
    plan: 2,
};
const PAGE: FlatRead = FlatRead {
    fill: SEARCH_PAGE_FILL,
    lang: SEARCH_PAGE_LANG,
    plain: SEARCH_PAGE,
    plan: 2,
};
const RECORD: FlatRead = FlatRead {
    fill: READ_FILL,
    lang: READ_LANG,
    plain: READ,
    plan: 1,
};

impl FlatRead {
    /// Runs the statement for this request with the parameters it takes of `params` (which end
    /// with the language pair). `fields`: the flat field list when Odoo may fill some of it
    /// (`--odoo-url`). Answers the plan of what Odoo fills, when the split statement ran and
    /// left Odoo something.
    async fn run(
        &self,
        state: &AppState,
        ctx: &Ctx,
        model: &str,
        fields: Option<&[String]>,
        in_language: bool,
        params: &crate::db::Params<'_>,
    ) -> Result<(gate::Passed, Option<Plan>), Problem> {
        let known = match (fields, &state.odoo) {
            (Some(fields), Some(upstream)) => {
                if !upstream.sql_reads.whole(model, fields) {
                    return self.split(state, ctx, model, fields, params).await;
                }
                Some((fields, upstream))
            }
            _ => None,
        };
        let (sql, sent) = if in_language {
            (self.lang, params)
        } else {
            (self.plain, &params[..params.len() - 2])
        };
        match (gate::run(state, ctx, sql, sent).await, known) {
            (Err(problem), Some((fields, upstream))) if SqlReads::outdated_by(&problem) => {
                upstream.sql_reads.forget(model, fields);
                self.split(state, ctx, model, fields, params).await
            }
            (answer, _) => answer.map(|p| (p, None)),
        }
    }

    /// The split statement: SQL reads what it can and says what Odoo fills; a list SQL reads
    /// whole is remembered (`odoo::SqlReads`).
    async fn split(
        &self,
        state: &AppState,
        ctx: &Ctx,
        model: &str,
        fields: &[String],
        params: &crate::db::Params<'_>,
    ) -> Result<(gate::Passed, Option<Plan>), Problem> {
        let p = gate::run(state, ctx, self.fill, params).await?;
        let plan = Plan::from_column(p.col(self.plan)?);
        if plan.is_none()
            && let Some(upstream) = &state.odoo
        {
            upstream.sql_reads.remember(model, fields);
        }
        Ok((p, plan))
    }
}

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

/// `lang=` with `specification=`: the nested reads take no language yet (`fields=a{b}` does).
fn no_lang_with_specification() -> Problem {
    Problem::invalid_parameter(
        "lang",
        "lang is not available with specification yet: use fields=name{...} for nested reads in a language",
    )
}

fn path_problem(e: PathRejection) -> Problem {
    Problem::not_found(format!("bad path: {}", e.body_text()))
}

/// The model a data route names, once the caller has sent credentials (401 comes before 404).
pub fn model_path(ctx: &Ctx, path: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    ctx.require_credentials()?;
    let Path(model) = path.map_err(path_problem)?;
    query::model(&model)
}

/// The model and record a route names, and what follows them (`None` for two segments).
fn record_path<R: RecordPath>(
    ctx: &Ctx,
    path: Result<Path<R>, PathRejection>,
) -> Result<(String, i32, R::Rest), Problem> {
    ctx.require_credentials()?;
    let Path(segments) = path.map_err(path_problem)?;
    let (model, id, rest) = segments.split();
    Ok((query::model(&model)?, query::record_id(&id)?, rest))
}

/// `<model>/<id>` or `<model>/<id>/<name>`.
trait RecordPath {
    type Rest;
    fn split(self) -> (String, String, Self::Rest);
}

impl RecordPath for (String, String) {
    type Rest = ();
    fn split(self) -> (String, String, ()) {
        (self.0, self.1, ())
    }
}

impl RecordPath for (String, String, String) {
    type Rest = String;
    fn split(self) -> (String, String, String) {
        (self.0, self.1, self.2)
    }
}

fn missing(model: &str, id: i32) -> Problem {
    Problem::not_found(format!(
        "{model} {id} does not exist or is not visible to this user"
    ))
}

/// `GET /api/v1/<model>?domain=&fields=&limit=&offset=&order=&count=` (or `specification=`
/// instead of `fields=`: a `web_read` specification)
pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let model = model_path(&ctx, path)?;
    let q = query::parse(
        raw.as_deref(),
        &[
            "domain",
            "fields",
            "specification",
            "limit",
            "offset",
            "order",
            "count",
            "after",
            "lang",
        ],
    )?;
    let lang = query::lang(&q)?;
    let accept = query::accept_language(&headers);
    let in_language = lang.is_some() || accept.is_some();
    let domain = q
        .get("domain")
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "[]".to_string());
    let fields = query::fields(&q)?;
    let specification = query::specification(&q)?;
    let limit = query::non_negative(&q, "limit")?;
    let offset = query::non_negative(&q, "offset")?.unwrap_or(0);
    let order = q
        .get("order")
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty());
    let count = query::boolean(&q, "count")?;
    // `after` (empty on the first page) asks for keyset pagination: a signed cursor for the
    // next page. Plain lists stay on `search_read`, whose statement the extension caches.
    if specification.is_some() && q.contains_key("after") {
        return Err(Problem::invalid_parameter(
            "specification",
            "specification is not available with after (cursor paging): use fields=name{...} there",
        ));
    }
    if q.contains_key("after") && !q.contains_key("offset") {
        let after = q.get("after").cloned().filter(|a| !a.is_empty());
        let odoo_may_fill = fields.as_deref().filter(|_| query::flat(&fields));
        let (p, plan) = PAGE
            .run(
                &state,
                &ctx,
                &model,
                odoo_may_fill,
                in_language,
                &[
                    (&model, Type::TEXT),
                    (&domain, Type::TEXT),
                    (&fields, Type::TEXT_ARRAY),
                    (&limit, Type::INT4),
                    (&order, Type::TEXT),
                    (&after, Type::TEXT),
                    (&count, Type::BOOL),
                    (&lang, Type::TEXT),
                    (&accept, Type::TEXT),
                ],
            )
            .await?;
        let page: Option<Value> = p.col(0)?;
        let total: Option<i64> = p.col(1)?;
        let g = &p.gate;
        let mut page = page.unwrap_or_else(|| json!({"records": [], "next": null}));
        if let Some(plan) = plan
            && let Some(records) = page["records"].as_array_mut()
        {
            fill::fill(&state, &ctx, g, &model, &plan, records)
                .await
                .map_err(|e| g.with_headers(e))?;
        }
        if count {
            page["count"] = json!(total.unwrap_or(0));
        }
        let next = page["next"].as_str().map(str::to_string);
        let mut response = conditional::respond(g, &headers, &page, None)?;
        query::vary_language(&mut response);
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
    if specification.is_some() && lang.is_some() {
        return Err(no_lang_with_specification());
    }
    let odoo_may_fill = fields.as_deref().filter(|_| query::flat(&fields));
    let (p, plan) = match &specification {
        // web_search_read has no language argument yet: Accept-Language is ignored there.
        Some(s) => (
            gate::run(
                &state,
                &ctx,
                WEB_SEARCH_READ,
                &[
                    (&model, Type::TEXT),
                    (&domain, Type::TEXT),
                    (s, Type::JSONB),
                    (&limit, Type::INT4),
                    (&offset, Type::INT4),
                    (&order, Type::TEXT),
                    (&count, Type::BOOL),
                ],
            )
            .await?,
            None,
        ),
        None => {
            LIST.run(
                &state,
                &ctx,
                &model,
                odoo_may_fill,
                in_language,
                &[
                    (&model, Type::TEXT),
                    (&domain, Type::TEXT),
                    (&fields, Type::TEXT_ARRAY),
                    (&limit, Type::INT4),
                    (&offset, Type::INT4),
                    (&order, Type::TEXT),
                    (&count, Type::BOOL),
                    (&lang, Type::TEXT),
                    (&accept, Type::TEXT),
                ],
            )
            .await?
        }
    };
    // The records as PostgreSQL wrote them (a JSON array), put in the body as they are.
    let records: Option<crate::db::RawJson> = p.col(0)?;
    let total: Option<i64> = p.col(1)?;
    let g = &p.gate;
    let mut records = records.map_or_else(|| b"[]".to_vec(), |r| r.0);
    if let Some(plan) = plan {
        // Odoo's values go into the records, so this body is parsed and written again.
        let mut list: Vec<Value> =
            serde_json::from_slice(&records).map_err(|_| g.with_headers(Problem::internal()))?;
        fill::fill(&state, &ctx, g, &model, &plan, &mut list)
            .await
            .map_err(|e| g.with_headers(e))?;
        records = serde_json::to_vec(&list).map_err(|_| g.with_headers(Problem::internal()))?;
    }
    let mut body = Vec::with_capacity(records.len() + 40);
    body.extend_from_slice(b"{\"records\": ");
    body.extend_from_slice(&records);
    if count {
        body.extend_from_slice(format!(", \"count\": {}", total.unwrap_or(0)).as_bytes());
    }
    body.push(b'}');
    let mut response = conditional::respond_bytes(g, &headers, body, None)?;
    query::vary_language(&mut response);
    Ok(response)
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
    let model = model_path(&ctx, path)?;
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

/// `GET /api/v1/<model>/<id>?fields=` or `?specification=`
pub async fn read(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (model, id, ()) = record_path(&ctx, path)?;
    let q = query::parse(raw.as_deref(), &["fields", "specification", "lang"])?;
    let fields = query::fields(&q)?;
    let specification = query::specification(&q)?;
    let lang = query::lang(&q)?;
    let accept = query::accept_language(&headers);
    let in_language = lang.is_some() || accept.is_some();
    if specification.is_some() && lang.is_some() {
        return Err(no_lang_with_specification());
    }
    let odoo_may_fill = fields.as_deref().filter(|_| query::flat(&fields));
    let (p, plan) = match &specification {
        // web_read has no language argument yet: Accept-Language is ignored there.
        Some(s) => (
            gate::run(
                &state,
                &ctx,
                WEB_READ,
                &[(&model, Type::TEXT), (&id, Type::INT4), (s, Type::JSONB)],
            )
            .await?,
            None,
        ),
        None => {
            RECORD
                .run(
                    &state,
                    &ctx,
                    &model,
                    odoo_may_fill,
                    in_language,
                    &[
                        (&model, Type::TEXT),
                        (&id, Type::INT4),
                        (&fields, Type::TEXT_ARRAY),
                        (&lang, Type::TEXT),
                        (&accept, Type::TEXT),
                    ],
                )
                .await?
        }
    };
    let g = &p.gate;
    match p.col::<Option<Value>>(0)? {
        Some(mut v) if v["record"].is_object() => {
            if let Some(plan) = plan {
                fill::fill(
                    &state,
                    &ctx,
                    g,
                    &model,
                    &plan,
                    std::slice::from_mut(&mut v["record"]),
                )
                .await
                .map_err(|e| g.with_headers(e))?;
            }
            // The tag covers the body, Odoo's values included.
            let version = v["version"].as_str().unwrap_or("0").to_string();
            let mut response = conditional::respond(g, &headers, &v["record"], Some(&version))?;
            query::vary_language(&mut response);
            Ok(response)
        }
        _ => Err(g.with_headers(missing(&model, id))),
    }
}

/// `GET /api/v1/<model>/<id>/<field>`: a binary field as a file, read through Odoo as the
/// caller (`--odoo-url`), with its attachment's content type and name, a strong `ETag` (304 on
/// `If-None-Match`, answered before Odoo is asked when the attachment has a checksum).
pub async fn download(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use api_gateway_core::download;
    let (model, id, field) = record_path(&ctx, path)?;
    let field = query::field_name(&field)?;
    query::parse(raw.as_deref(), &[])?;
    let cond = conditional::condition(&headers, header::IF_NONE_MATCH)?;
    if state.odoo.is_none() {
        return Err(files_need_odoo());
    }
    let p = gate::run(
        &state,
        &ctx,
        BINARY_FILE,
        &[
            (&model, Type::TEXT),
            (&id, Type::INT4),
            (&field, Type::TEXT),
        ],
    )
    .await?;
    let g = &p.gate;
    let Some(facts) = p.col::<Option<Value>>(0)? else {
        return Err(g.with_headers(missing(&model, id)));
    };
    let attachment = &facts["attachment"];
    let checksum = attachment["checksum"].as_str();
    let not_modified = |tag: &str| {
        cond.as_ref()
            .is_some_and(|c| api_gateway_core::etag::none_match_fails(c, tag))
    };
    if let Some(tag) = download::file_tag(checksum, None)
        && not_modified(&tag)
    {
        return Ok(file_response(g, StatusCode::NOT_MODIFIED, &tag, None));
    }
    let rows = fill::odoo_read(
        &state,
        &ctx,
        g,
        &model,
        &[i64::from(id)],
        std::slice::from_ref(&field),
        &json!({}),
    )
    .await
    .map_err(|e| g.with_headers(e))?;
    let encoded = rows
        .iter()
        .find(|r| r["id"].as_i64() == Some(i64::from(id)))
        .and_then(|r| r[field.as_str()].as_str());
    let Some(encoded) = encoded.filter(|e| !e.is_empty()) else {
        return Err(g.with_headers(Problem::not_found(format!(
            "{model} {id} has no file in {field}"
        ))));
    };
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| {
            g.with_headers(
                Problem::new(StatusCode::BAD_GATEWAY, crate::error::kind::UPSTREAM_ERROR)
                    .detail(format!("Odoo's {model}.read gave {field} not in base64")),
            )
        })?;
    let tag = download::file_tag(checksum, Some(&bytes)).unwrap_or_default();
    if not_modified(&tag) {
        return Ok(file_response(g, StatusCode::NOT_MODIFIED, &tag, None));
    }
    let content_type = download::content_type(
        attachment["mimetype"].as_str(),
        &bytes[..bytes.len().min(16)],
    );
    let name = attachment["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(&field);
    let mut response = file_response(g, StatusCode::OK, &tag, Some(bytes::Bytes::from(bytes)));
    let h = response.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, content_type),
        (
            header::CONTENT_DISPOSITION,
            download::content_disposition(name),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    Ok(response)
}

/// Chunks a file body is streamed in.
const FILE_CHUNK: usize = 64 * 1024;

fn file_response(
    g: &gate::Gate,
    status: StatusCode,
    tag: &str,
    bytes: Option<bytes::Bytes>,
) -> Response {
    let mut response = match bytes {
        Some(b) => {
            let len = b.len();
            let chunks = (0..len.div_ceil(FILE_CHUNK).max(1)).map(move |i| {
                Ok::<_, std::convert::Infallible>(
                    b.slice(i * FILE_CHUNK..((i + 1) * FILE_CHUNK).min(len)),
                )
            });
            let mut r = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            *r.status_mut() = status;
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                r.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            r
        }
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = status;
            r
        }
    };
    let h = response.headers_mut();
    h.extend(g.rate_headers());
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    response
}

/// 501 for a file without `--odoo-url`.
fn files_need_odoo() -> Problem {
    Problem::new(StatusCode::NOT_IMPLEMENTED, crate::error::kind::NOT_IMPLEMENTED).detail(
        "binary fields are kept in Odoo's filestore and read through Odoo: start api-gateway serve with --odoo-url to download them",
    )
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
    let model = model_path(&ctx, path)?;
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
    let (model, id, ()) = record_path(&ctx, path)?;
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
    change(
        &state,
        &ctx,
        (&model, id),
        Some(&vals),
        versions,
        (WRITE, WRITE_IF_MATCH),
    )
    .await
}

/// `DELETE /api/v1/<model>/<id>`: 204.
pub async fn unlink(
    State(state): State<AppState>,
    ctx: Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (model, id, ()) = record_path(&ctx, path)?;
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
    change(
        &state,
        &ctx,
        (&model, id),
        None,
        versions,
        (UNLINK, UNLINK_IF_MATCH),
    )
    .await
}

/// A write (`vals`) or an unlink in SQL: the plain statement, or with `If-Match` the one that
/// checks the record's version first. 204; 404 (412 when the version differs).
async fn change(
    state: &AppState,
    ctx: &Ctx,
    (model, id): (&String, i32),
    vals: Option<&Value>,
    versions: Option<Vec<String>>,
    (plain, if_match): (GatedSql, GatedSql),
) -> Result<Response, ApiError> {
    let mut params: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> =
        vec![(model, Type::TEXT), (&id, Type::INT4)];
    if let Some(vals) = &vals {
        params.push((vals, Type::JSONB));
    }
    if let Some(versions) = &versions {
        params.push((versions, Type::TEXT_ARRAY));
        let p = gate::run(state, ctx, if_match, &params).await?;
        return written(&p.gate, p.col::<Option<&str>>(0)?, model, id);
    }
    let p = gate::run(state, ctx, plain, &params).await?;
    let g = &p.gate;
    match p.col::<Option<bool>>(0)? {
        Some(true) => Ok(g.respond(StatusCode::NO_CONTENT, None)),
        _ => Err(g.with_headers(missing(model, id))),
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
    let (model, id, method) = record_path(&ctx, path)?;
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
