//! The OpenAPI 3.1 document: the generic routes plus, per exposed model, paths and schemas built
//! from `api_gateway.describe_models(uid)` (Odoo's `ir_model_fields`: types, required, readonly,
//! selection values, relations). Generated at start and regenerated when the metadata changes
//! (checked every `--openapi-refresh-s` seconds).
use crate::{AppState, db};
use serde_json::{Map, Value, json};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_postgres::types::Type;

#[derive(Debug, Clone)]
pub struct Options {
    /// Odoo user whose read access decides which models are described.
    pub uid: i32,
    /// Exposed models (exact names or `prefix.*`); empty = all the user may read.
    pub expose: Vec<String>,
    /// Public base URL for `servers`; empty = none (same origin).
    pub public_url: String,
    pub refresh: Duration,
    /// Whether writes and method calls are forwarded to Odoo (`--odoo-url`): the method routes
    /// are described only then (without it they answer 501).
    pub methods: bool,
}

/// The current document, serialized, and the fingerprint of the metadata it was built from.
#[derive(Default)]
pub struct Cache {
    current: RwLock<Option<Arc<Document>>>,
}

pub struct Document {
    pub json: Vec<u8>,
    pub fingerprint: u64,
    pub models: usize,
}

impl Cache {
    pub fn get(&self) -> Option<Arc<Document>> {
        self.current.read().ok()?.clone()
    }
    fn set(&self, doc: Document) {
        if let Ok(mut w) = self.current.write() {
            *w = Some(Arc::new(doc));
        }
    }
}

/// Re-read the metadata every `refresh`, regenerating the document when it changed.
pub async fn refresh_loop(state: AppState) {
    loop {
        if let Err(e) = refresh(&state).await {
            tracing::warn!("OpenAPI refresh failed: {e}");
        }
        tokio::time::sleep(state.config.openapi.refresh).await;
    }
}

/// Read the metadata and regenerate the document if it changed. Returns the current document.
pub async fn refresh(state: &AppState) -> Result<Arc<Document>, String> {
    let opts = &state.config.openapi;
    let timeout = state.config.statement_timeout;
    let sql = "SELECT api_gateway.version(), \
               CASE WHEN to_regprocedure('api_gateway.describe_models(integer)') IS NOT NULL \
                    THEN api_gateway.describe_models($1) END";
    let row = db::query_one(&state.pool, timeout, sql, &[(&opts.uid, Type::INT4)])
        .await
        .map_err(|p| format!("{}: {}", p.title, p.detail.unwrap_or_default()))?;
    let version: String = row.get(0);
    let models: Option<Value> = row.get(1);
    if models.is_none() {
        tracing::warn!(
            "api_gateway.describe_models is not installed: the OpenAPI document lists the generic routes only"
        );
    }
    let models = filter_models(models.unwrap_or_else(|| json!({})), &opts.expose);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    version.hash(&mut hasher);
    models.to_string().hash(&mut hasher);
    let fingerprint = hasher.finish();
    if let Some(doc) = state.openapi.get()
        && doc.fingerprint == fingerprint
    {
        return Ok(doc);
    }
    let n = models.as_object().map_or(0, Map::len);
    let spec = generate(&version, &models, &opts.public_url, opts.methods);
    let json = serde_json::to_vec(&spec).map_err(|e| e.to_string())?;
    tracing::info!(
        "OpenAPI document generated: {n} models, {} bytes",
        json.len()
    );
    state.openapi.set(Document {
        json,
        fingerprint,
        models: n,
    });
    state.openapi.get().ok_or_else(|| "cache poisoned".into())
}

/// Whether `model` matches one of the patterns (exact, or `prefix*`).
pub fn exposed(model: &str, patterns: &[String]) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => p == model,
        })
}

fn filter_models(models: Value, patterns: &[String]) -> Value {
    match models {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| crate::routes::query::valid_model(k) && exposed(k, patterns))
                .collect(),
        ),
        _ => json!({}),
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// JSON Schema of one field's value as the API returns it. Empty values may be `null` or `false`
/// (Odoo's convention), so every non-boolean type admits both.
fn field_schema(field: &Value, for_input: bool) -> Value {
    let ttype = field.get("type").and_then(Value::as_str).unwrap_or("");
    let relation = field.get("relation").and_then(Value::as_str);
    let mut base = match ttype {
        "boolean" => json!({"type": "boolean"}),
        "integer" => json!({"type": "integer"}),
        "float" | "monetary" => json!({"type": "number"}),
        "char" | "text" | "html" | "date" | "datetime" | "binary" | "reference" => {
            json!({"type": "string"})
        }
        "selection" => {
            let values: Vec<Value> = field
                .get("selection")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.get(0).cloned())
                        .filter(|v| v.is_string())
                        .collect()
                })
                .unwrap_or_default();
            if values.is_empty() {
                json!({"type": "string"})
            } else {
                json!({"type": "string", "enum": values})
            }
        }
        "many2one" | "many2one_reference" => {
            if for_input {
                json!({"type": "integer"})
            } else {
                json!({"anyOf": [
                    {"type": "integer"},
                    {"type": "array", "minItems": 2, "maxItems": 2,
                     "items": {"type": ["integer", "string"]},
                     "description": "[id, display name]"},
                    {"type": "object", "required": ["id"],
                     "description": "the related record with the sub-fields asked for (nested read: fields=name{...} or specification)"}
                ]})
            }
        }
        "one2many" | "many2many" => {
            if for_input {
                json!({"type": "array"})
            } else {
                json!({"type": "array", "items": {"anyOf": [
                    {"type": "integer"},
                    {"type": "object", "required": ["id"],
                     "description": "a related record with the sub-fields asked for (nested read)"}]}})
            }
        }
        _ => json!({}),
    };
    if ttype != "boolean" && base != json!({}) {
        base = json!({"anyOf": [base, {"type": "null"}, {"const": false}]});
    }
    let obj = base.as_object_mut().expect("object");
    // title: Odoo's label; description: Odoo's help text, then what the API adds to it.
    let mut description = field
        .get("help")
        .and_then(Value::as_str)
        .map(|h| format!("{} ", h.trim()))
        .unwrap_or_default();
    description.push_str(&format!("(Odoo {ttype}"));
    if let Some(rel) = relation {
        description.push_str(&format!(" → {rel}"));
        obj.insert("x-odoo-relation".into(), json!(rel));
    }
    if field.get("required").and_then(Value::as_bool) == Some(true) {
        description.push_str(", required");
    }
    let through_odoo = field.get("source").and_then(Value::as_str) == Some("odoo");
    if field.get("readonly").and_then(Value::as_bool) == Some(true) || through_odoo {
        description.push_str(", read-only");
        obj.insert("readOnly".into(), json!(true));
    }
    description.push(')');
    if through_odoo {
        // Non-stored computed fields and binaries: only Odoo computes them.
        description.push_str(". Computed by Odoo: read with --odoo-url");
        obj.insert("x-odoo-source".into(), json!("odoo"));
    }
    if let Some(sel) = field.get("selection").and_then(Value::as_array)
        && !sel.is_empty()
    {
        // Labels that only repeat their value (time zones...) are left to the enum.
        let labels: Vec<String> = sel
            .iter()
            .filter_map(|p| Some((p.get(0)?.as_str()?, p.get(1)?.as_str()?)))
            .filter(|(value, label)| value != label)
            .map(|(value, label)| format!("`{value}` {label}"))
            .collect();
        if !labels.is_empty() {
            description.push_str(&format!(". Values: {}", labels.join(", ")));
        }
    }
    obj.insert(
        "title".into(),
        json!(field.get("string").cloned().unwrap_or(json!(""))),
    );
    obj.insert("description".into(), json!(description.trim()));
    obj.insert("x-odoo-type".into(), json!(ttype));
    base
}

/// Whether a field is written with the record (create/write schemas): stored, not binary, not
/// read-only. Everything else is computed by Odoo.
fn writable(field: &Value) -> bool {
    field.get("store").and_then(Value::as_bool) != Some(false)
        && field.get("type").and_then(Value::as_str) != Some("binary")
        && field.get("source").and_then(Value::as_str) != Some("odoo")
        && field.get("readonly").and_then(Value::as_bool) != Some(true)
}

fn model_schemas(model: &str, meta: &Value) -> Vec<(String, Value)> {
    let label = meta.get("name").and_then(Value::as_str).unwrap_or(model);
    let fields = meta
        .get("fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut record = Map::new();
    let mut create = Map::new();
    let mut required = Vec::new();
    record.insert("id".into(), json!({"type": "integer", "readOnly": true}));
    for (name, field) in &fields {
        if name == "id" {
            continue;
        }
        record.insert(name.clone(), field_schema(field, false));
        if writable(field) {
            create.insert(name.clone(), field_schema(field, true));
            if field.get("required").and_then(Value::as_bool) == Some(true) {
                required.push(json!(name));
            }
        }
    }
    vec![
        (
            model.to_string(),
            json!({"type": "object", "title": label,
                   "description": format!("A {label} record ({model}) as read; only the requested fields are present."),
                   "properties": record}),
        ),
        (
            format!("{model}.create"),
            json!({"type": "object", "title": format!("New {label}"),
                   "description": format!("Field values for a new {label}. Fields marked required in Odoo must be given unless Odoo has a default."),
                   "properties": create, "x-odoo-required": required}),
        ),
        (
            format!("{model}.write"),
            // The same fields as for a new record (without `x-odoo-required`): a reference, so
            // the document carries each field's schema once for input.
            json!({"type": "object", "title": format!("{label} changes"), "minProperties": 1,
                   "description": format!("The fields of the {label} to change."),
                   "allOf": [schema_ref(&format!("{model}.create"))]}),
        ),
    ]
}

fn security(scope: &str) -> Value {
    json!([{"oauth2": [scope]}, {"bearer": []}])
}

fn gated_responses(ok: (&str, Value)) -> Value {
    let mut r = json!({
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "429": {"$ref": "#/components/responses/TooManyRequests"},
        "default": {"$ref": "#/components/responses/Problem"},
    });
    r[ok.0] = ok.1;
    r
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "headers": rate_headers(),
           "content": {"application/json": {"schema": schema}}})
}

fn rate_headers() -> Value {
    json!({
        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
        "RateLimit": {"$ref": "#/components/headers/RateLimit"},
    })
}

fn param(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

/// The operations of `/api/v1/<model>` and `/api/v1/<model>/<id>`; `model` None = generic.
fn record_paths(model: Option<(&str, &str)>) -> (Value, Value) {
    let (record, create, write, tag, suffix, label) = match model {
        Some((m, label)) => (
            schema_ref(m),
            schema_ref(&format!("{m}.create")),
            schema_ref(&format!("{m}.write")),
            m.to_string(),
            format!("_{}", m.replace('.', "_")),
            label.to_string(),
        ),
        None => (
            schema_ref("Record"),
            json!({"type": "object"}),
            json!({"type": "object", "minProperties": 1}),
            "any model".to_string(),
            String::new(),
            "records".to_string(),
        ),
    };
    let mut common: Vec<Value> = Vec::new();
    if model.is_none() {
        common.push(param("model"));
    }
    let list_params: Vec<Value> = common
        .iter()
        .cloned()
        .chain(
            [
                "domain",
                "fields",
                "specification",
                "limit",
                "offset",
                "order",
                "count",
                "after",
                "lang",
                "Accept-Language",
                "If-None-Match",
            ]
            .map(param),
        )
        .collect();
    let collection = json!({
        "get": {
            "tags": [tag], "operationId": format!("search_read{suffix}"),
            "summary": format!("Search and read {label}"),
            "description": "Odoo `search_read`: the records matching `domain` that the user may see, with the requested fields.",
            "parameters": list_params, "security": security("read"),
            "responses": gated_responses(("200", ok_json("The matching records",
                json!({"type": "object", "required": ["records"], "properties": {
                    "records": {"type": "array", "items": record.clone()},
                    "count": {"type": "integer", "description": "Total number of matching records (with count=true)"},
                    "next": {"type": ["string", "null"], "description": "Without offset: the signed cursor of the next page (pass it as after), null on the last page"}}})))),
        },
        "post": {
            "tags": [tag], "operationId": format!("create{suffix}"),
            "summary": format!("Create a record ({label})"),
            "parameters": common.iter().cloned().chain([param("Idempotency-Key")]).collect::<Vec<_>>(), "security": security("write"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": create}}},
            "responses": gated_responses(("201", json!({
                "description": "Created; Location points to the new record",
                "headers": {
                    "Location": {"schema": {"type": "string"}},
                    "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
                    "RateLimit": {"$ref": "#/components/headers/RateLimit"}},
                "content": {"application/json": {"schema": schema_ref("Created")}}}))),
        },
    });
    let id_params: Vec<Value> = common.iter().cloned().chain([param("id")]).collect();
    let read_params: Vec<Value> = id_params
        .iter()
        .cloned()
        .chain([
            param("fields"),
            param("specification"),
            param("lang"),
            param("Accept-Language"),
            param("If-None-Match"),
        ])
        .collect();
    let id_params_keyed: Vec<Value> = id_params
        .iter()
        .cloned()
        .chain([param("Idempotency-Key"), param("If-Match")])
        .collect();
    let no_content = json!({"description": "Done", "headers": rate_headers()});
    let item = json!({
        "get": {
            "tags": [tag], "operationId": format!("read{suffix}"),
            "summary": format!("Read one record ({label})"),
            "description": "404 when the record does not exist or the user may not see it.",
            "parameters": read_params, "security": security("read"),
            "responses": gated_responses(("200", ok_json("The record", record))),
        },
        "put": {
            "tags": [tag], "operationId": format!("write{suffix}"),
            "summary": format!("Update a record ({label})"),
            "description": "Odoo `write`: only the given fields change (PUT and PATCH are the same).",
            "parameters": id_params_keyed.clone(), "security": security("write"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": write.clone()}}},
            "responses": gated_responses(("204", no_content.clone())),
        },
        "patch": {
            "tags": [tag], "operationId": format!("patch{suffix}"),
            "summary": format!("Update a record ({label})"),
            "parameters": id_params_keyed.clone(), "security": security("write"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": write}}},
            "responses": gated_responses(("204", no_content.clone())),
        },
        "delete": {
            "tags": [tag], "operationId": format!("unlink{suffix}"),
            "summary": format!("Delete a record ({label})"),
            "parameters": id_params_keyed, "security": security("delete"),
            "responses": gated_responses(("204", no_content)),
        },
    });
    let (mut collection, mut item) = (collection, item);
    conditional_responses(&mut collection, &mut item);
    (collection, item)
}

/// `GET /api/v1/{model}/changes`: the change feed, on the models the DBA enabled.
fn changes_path() -> Value {
    json!({"get": {
        "tags": ["any model"], "operationId": "changes",
        "summary": "Changes since a cursor (change feed)",
        "description": "The records created or updated since `since`, with their current values as a list returns them (the caller's access rights and record rules applied; archived records included), the ids deleted since, and the cursor of the next poll. Built on commit order: a change is returned by exactly one poll, also when transactions commit out of order. Without `since`, a new feed: no change, and the cursor of this moment (start the feed, then read everything once, then poll with `next`). The DBA enables the feed per model (`api_gateway.feed_enable`): 409 `not-enabled` otherwise; a cursor older than the feed's retention: 410 `cursor-expired` (start again).",
        "parameters": [param("model"), param("since"), param("fields"), param("limit")],
        "security": security("read"),
        "responses": {
            "200": {"description": "The changes since the cursor",
                "headers": rate_headers(),
                "content": {"application/json": {"schema": schema_ref("Changes")}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "404": {"$ref": "#/components/responses/NotFound"},
            "409": problem_response("The model's change feed is not enabled (a DBA enables it with api_gateway.feed_enable)"),
            "410": problem_response("The cursor is older than the feed's retention (or than its last enabling): start a new feed without since"),
            "429": {"$ref": "#/components/responses/TooManyRequests"},
            "default": {"$ref": "#/components/responses/Problem"},
        },
    }})
}

/// The business method routes (forwarded to Odoo's JSON-2; 501 without --odoo-url).
fn method_paths() -> (Value, Value) {
    let op = |id: &str, summary: &str, description: &str, params: Vec<Value>| {
        json!({"post": {
            "tags": ["any model"], "operationId": id, "summary": summary, "description": description,
            "parameters": params, "security": security("write"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": schema_ref("MethodCall")}}},
            "responses": gated_responses(("200", ok_json("The method's return value", schema_ref("MethodResult")))),
        }})
    };
    (
        op(
            "call_model_method",
            "Call a model method in Odoo",
            "Odoo JSON-2 `/json/2/<model>/<method>` without ids (an `@api.model` method), as the caller's Odoo user. Odoo's errors come back as problems with Odoo's message: 422 UserError/ValidationError, 403 AccessError, 404 MissingError, 409 LockError, 400 bad arguments. Needs `--odoo-url` (else 501).",
            vec![param("model"), param("method"), param("Idempotency-Key")],
        ),
        op(
            "call_record_method",
            "Call a method on one record in Odoo",
            "Odoo JSON-2 `/json/2/<model>/<method>` with `ids: [id]`, e.g. `action_confirm` on a sale.order. Needs `--odoo-url` (else 501).",
            vec![
                param("model"),
                param("id"),
                param("method"),
                param("Idempotency-Key"),
            ],
        ),
    )
}

/// `GET /api/v1/{model}/fields` (one generic path: per model it would only repeat the schemas).
fn fields_path() -> Value {
    let mut ok = ok_json(
        "Every field of the model the user may see, stored or not",
        schema_ref("Fields"),
    );
    ok["headers"]["ETag"] = json!({"$ref": "#/components/headers/ETag"});
    let mut responses = gated_responses(("200", ok));
    responses["304"] = json!({"$ref": "#/components/responses/NotModified"});
    json!({"get": {
        "tags": ["any model"], "operationId": "fields_get",
        "summary": "Describe a model's fields (Odoo fields_get)",
        "description": "Odoo `fields_get` for the caller: type, label (`string`) and help in the request's language, required, readonly, store, relation, selection values; fields restricted to groups the caller lacks are left out. `source` says whether the gateway serves the field from SQL or only through Odoo (`--odoo-url`).",
        "parameters": [param("model"), param("lang"), param("Accept-Language"), param("If-None-Match")],
        "security": security("read"),
        "responses": responses,
    }})
}

/// A binary field as a file (read through Odoo; 501 without --odoo-url).
fn file_path() -> Value {
    let mut responses = gated_responses((
        "200",
        json!({"description": "The file's bytes, with the attachment's content type and name (Content-Disposition: attachment) and a strong ETag",
               "headers": {
                   "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
                   "RateLimit": {"$ref": "#/components/headers/RateLimit"},
                   "ETag": {"$ref": "#/components/headers/ETag"},
                   "Content-Disposition": {"schema": {"type": "string"},
                       "description": "attachment; filename=\"...\"; filename*=UTF-8''..."}},
               "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                           "image/*": {"schema": {"type": "string", "format": "binary"}}}}),
    ));
    responses["304"] = json!({"$ref": "#/components/responses/NotModified"});
    json!({"get": {
        "tags": ["any model"], "operationId": "download_binary_field",
        "summary": "Download a binary field as a file",
        "description": "The bytes of a binary field (an image, `ir.attachment.datas`), read through Odoo's JSON-2 `read` as the caller's Odoo user after the gateway checked that the caller may read the record and the field (as Odoo: access right, record rules, field groups). The content type and file name are the attachment's (`ir_attachment.mimetype`/`name`) where Odoo keeps one. 404 when the record is not visible or the field holds no file; 422 for a field that is not binary. Needs `--odoo-url` (else 501).",
        "parameters": [param("model"), param("id"), param("field"), param("If-None-Match")],
        "security": security("read"),
        "responses": responses,
    }})
}

/// ETag on reads and 304 for If-None-Match; 412 for If-Match on writes (RFC 9110 §13).
fn conditional_responses(collection: &mut Value, item: &mut Value) {
    collection["get"]["responses"]["200"]["headers"]["Link"] =
        json!({"$ref": "#/components/headers/Link"});
    for get in [&mut collection["get"], &mut item["get"]] {
        get["responses"]["200"]["headers"]["ETag"] = json!({"$ref": "#/components/headers/ETag"});
        get["responses"]["304"] = json!({"$ref": "#/components/responses/NotModified"});
    }
    for method in ["put", "patch", "delete"] {
        item[method]["responses"]["412"] =
            json!({"$ref": "#/components/responses/PreconditionFailed"});
    }
}

/// The whole document.
pub fn generate(version: &str, models: &Value, public_url: &str, methods: bool) -> Value {
    let token_url = format!("{public_url}/api/oauth/token");
    let mut paths = Map::new();
    let mut schemas = base_schemas();
    let mut tags = vec![
        json!({"name": "system", "description": "Ping and health"}),
        json!({"name": "oauth", "description": "OAuth2 client credentials (RFC 6749), revocation (RFC 7009), introspection (RFC 7662)"}),
    ];
    paths.insert("/api/v1/ping".into(), json!({"get": {
        "tags": ["system"], "operationId": "ping", "summary": "Check credentials and the database",
        "security": security("read"),
        "responses": gated_responses(("200", ok_json("Authenticated", schema_ref("Pong")))),
    }}));
    if let Some(m) = models.as_object() {
        for (model, meta) in m {
            let label = meta.get("name").and_then(Value::as_str).unwrap_or(model);
            tags.push(json!({"name": model, "description": label}));
            let (collection, item) = record_paths(Some((model, label)));
            paths.insert(format!("/api/v1/{model}"), collection);
            paths.insert(format!("/api/v1/{model}/{{id}}"), item);
            for (name, schema) in model_schemas(model, meta) {
                schemas.insert(name, schema);
            }
        }
    }
    tags.push(
        json!({"name": "any model", "description": "The same operations on any model by name"}),
    );
    let (collection, item) = record_paths(None);
    paths.insert("/api/v1/{model}".into(), collection);
    paths.insert("/api/v1/{model}/{id}".into(), item);
    paths.insert("/api/v1/{model}/fields".into(), fields_path());
    paths.insert("/api/v1/{model}/changes".into(), changes_path());
    if methods {
        let (model_call, record_call) = method_paths();
        paths.insert("/api/v1/{model}/call/{method}".into(), model_call);
        paths.insert("/api/v1/{model}/{id}/call/{method}".into(), record_call);
        paths.insert("/api/v1/{model}/{id}/{field}".into(), file_path());
    }
    paths.extend(oauth_paths());
    paths.insert(
        "/health/live".into(),
        json!({"get": {
        "tags": ["system"], "operationId": "health_live", "summary": "Liveness", "security": [],
        "responses": {"200": {"description": "The process runs",
            "content": {"application/json": {"schema": schema_ref("Health")}}}}}}),
    );
    paths.insert("/health/ready".into(), json!({"get": {
        "tags": ["system"], "operationId": "health_ready", "summary": "Readiness (the database answers)",
        "security": [],
        "responses": {"200": {"description": "Ready",
            "content": {"application/json": {"schema": schema_ref("Health")}}},
            "default": {"$ref": "#/components/responses/Problem"}}}}));
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Odoo API gateway",
            "version": version,
            "description": "REST access to Odoo models with OAuth2 client credentials or Odoo API keys, served by `api-gateway serve` from the `api_gateway` PostgreSQL extension. Errors are RFC 9457 problem documents; every authenticated answer carries `RateLimit-Policy` and `RateLimit` headers. Authorize once (a client id and secret, or a bearer token: an access token or an Odoo API key), then try the operations.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "oauth2": {"type": "oauth2", "description": "OAuth2 client credentials: a client made with api_gateway.create_client()",
                    "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": {
                        "read": "GET: search and read records", "write": "POST, PUT, PATCH: create and update records",
                        "delete": "DELETE: delete records", "admin": "every operation"}}}},
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "An access token from /api/oauth/token, or an Odoo API key (scopes read, write, delete)"},
                "clientBasic": {"type": "http", "scheme": "basic",
                    "description": "OAuth2 client_secret_basic: client_id and client_secret"},
            },
            "schemas": schemas,
            "parameters": parameters(),
            "headers": {
                "RateLimit-Policy": {"description": "Quota policy, e.g. `\"default\";q=60` (draft-ietf-httpapi-ratelimit-headers)",
                    "schema": {"type": "string"}},
                "RateLimit": {"description": "Remaining quota and seconds until it resets, e.g. `\"default\";r=59;t=60`",
                    "schema": {"type": "string"}},
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
                "Link": {"description": "RFC 8288 link to the next page, `</api/v1/<model>?...&after=<cursor>>; rel=\"next\"` (absent on the last page)",
                    "schema": {"type": "string"}},
                "ETag": {"description": "Strong entity-tag of this representation (RFC 9110 §8.8.3). A record's tag also names the row version, which If-Match checks.",
                    "schema": {"type": "string"}, "example": "\"948113.5d41402abc4b2a76b9719d911017c592\""},
            },
            "responses": {
                "Unauthorized": problem_response("Missing, malformed, expired or revoked credentials (with WWW-Authenticate: Bearer)"),
                "Forbidden": problem_response("Insufficient scope, IP address not allowed, API access disabled, or Odoo access rights"),
                "NotFound": problem_response("No such record or model, or not visible to this user"),
                "TooManyRequests": {"description": "Rate limit exceeded",
                    "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"},
                        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
                        "RateLimit": {"$ref": "#/components/headers/RateLimit"}},
                    "content": {"application/problem+json": {"schema": schema_ref("Problem")}}},
                "Problem": problem_response("An error (RFC 9457 problem document)"),
                "NotModified": {"description": "If-None-Match matched the current representation: no body",
                    "headers": {"ETag": {"$ref": "#/components/headers/ETag"},
                        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
                        "RateLimit": {"$ref": "#/components/headers/RateLimit"}}},
                "PreconditionFailed": problem_response("If-Match named no current version of the record: it changed since (nothing was written)"),
                "OAuthError": {"description": "An RFC 6749 error",
                    "content": {"application/json": {"schema": schema_ref("OAuthError")}}},
            },
        },
    });
    if !public_url.is_empty() {
        doc["servers"] = json!([{"url": public_url}]);
    }
    doc
}

fn problem_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/problem+json": {"schema": schema_ref("Problem")}}})
}

fn parameters() -> Value {
    json!({
        "model": {"name": "model", "in": "path", "required": true,
            "description": "Technical model name, e.g. res.partner",
            "schema": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*(\\.[a-z0-9_]+)*$", "maxLength": 128},
            "example": "res.partner"},
        "id": {"name": "id", "in": "path", "required": true, "description": "Record id",
            "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}},
        "domain": {"name": "domain", "in": "query", "required": false,
            "description": "Odoo domain, as a Python literal or JSON, e.g. [('is_company','=',True)] or [[\"name\",\"ilike\",\"ada\"]]",
            "schema": {"type": "string"}, "example": "[(\"is_company\", \"=\", True)]"},
        "fields": {"name": "fields", "in": "query", "required": false,
            "description": "Comma-separated field names (default: all readable fields). A relational field may name sub-fields to read the related records in the same request, with that model's access rights and record rules: `partner_id{name,email}`, `order_line(limit=5,order='sequence desc'){product_id{name},price_subtotal}` (at most 4 levels; an x2many's `limit` reads only its first N records in full, the others come back as {\"id\": N}, as Odoo's web_read does). See docs/http.md, nested reads.",
            "schema": {"type": "string"}, "example": "name,partner_id{name,email},order_line{product_id{name},price_subtotal}"},
        "specification": {"name": "specification", "in": "query", "required": false,
            "description": "Instead of fields: an Odoo 17+ `web_read` specification as JSON, e.g. {\"partner_id\": {\"fields\": {\"name\": {}}}, \"order_line\": {\"fields\": {\"name\": {}}, \"limit\": 5, \"order\": \"sequence\"}}. Values are shaped as web_read returns them (a many2one without sub-fields is its id). Not with after.",
            "schema": {"type": "string"}, "example": "{\"name\": {}, \"partner_id\": {\"fields\": {\"display_name\": {}}}}"},
        "limit": {"name": "limit", "in": "query", "required": false,
            "description": "Maximum number of records (default and maximum set in api_gateway.settings)",
            "schema": {"type": "integer", "minimum": 0, "maximum": 2147483647}},
        "offset": {"name": "offset", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 0, "maximum": 2147483647}},
        "order": {"name": "order", "in": "query", "required": false,
            "description": "Sort order, e.g. `name asc, id desc`", "schema": {"type": "string"}},
        "If-None-Match": {"name": "If-None-Match", "in": "header", "required": false,
            "description": "Entity-tags (or `*`) of copies the client holds: 304 without a body when one is current (weak comparison)",
            "schema": {"type": "string"}},
        "If-Match": {"name": "If-Match", "in": "header", "required": false,
            "description": "Entity-tags of record versions the change may apply to (strong comparison, checked on the locked row): 412 when the record changed since; `*` = the record exists",
            "schema": {"type": "string"}},
        "after": {"name": "after", "in": "query", "required": false,
            "description": "Keyset pagination: empty on the first page, then the `next` cursor of the previous page (opaque, signed; valid only for the same user, model, domain and order; not with offset)",
            "schema": {"type": "string"}},
        "since": {"name": "since", "in": "query", "required": false,
            "description": "Change feed: the `next` cursor of the previous poll (opaque, signed; valid only for the same user and model); absent or empty to start a feed",
            "schema": {"type": "string"}},
        "count": {"name": "count", "in": "query", "required": false,
            "description": "Also return the total number of matching records",
            "schema": {"type": "boolean"}},
        "lang": {"name": "lang", "in": "query", "required": false,
            "description": "Language of translated values, display names and labels: an installed Odoo language (`fr_FR`) or a tag naming one (`fr`, `fr-FR`); 400 when none is installed. Takes precedence over Accept-Language; default: the user's language",
            "schema": {"type": "string", "maxLength": 64}, "example": "fr_FR"},
        "Accept-Language": {"name": "Accept-Language", "in": "header", "required": false,
            "description": "RFC 9110 language preferences with q-values, matched to the installed Odoo languages (`fr` → fr_FR, `en` → en_US); members that cannot be read, and preferences no installed language meets, are ignored (the user's language then applies). Answers carry `Vary: Accept-Language`",
            "schema": {"type": "string"}, "example": "fr-CH, fr;q=0.9, en;q=0.8"},
        "method": {"name": "method", "in": "path", "required": true,
            "description": "A public method of the model (Odoo refuses private and _-prefixed ones)",
            "schema": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 128},
            "example": "action_confirm"},
        "field": {"name": "field", "in": "path", "required": true,
            "description": "A binary field of the model, e.g. image_128 (or datas on ir.attachment)",
            "schema": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$", "maxLength": 128},
            "example": "image_128"},
        "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "With --odoo-url: a unique key per request (draft-ietf-httpapi-idempotency-key-header); a retry with the same key and request gets the first answer again (Idempotent-Replayed: true) for 24 hours, another request with it 422, a duplicate while the first runs 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 257}},
    })
}

fn base_schemas() -> Map<String, Value> {
    let v = json!({
        "Problem": {"type": "object", "description": "RFC 9457 problem document",
            "required": ["type", "title", "status"],
            "properties": {
                "type": {"type": "string", "description": "Stable URI of the kind of problem"},
                "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "instance": {"type": "string"},
                "sqlstate": {"type": "string", "description": "SQLSTATE, when the database raised the error"},
                "error": {"type": "string", "description": "The gate's error code (RFC 6750 where one fits)"},
                "parameter": {"type": "string"}, "line": {"type": "integer"}, "column": {"type": "integer"},
                "limit": {"type": "integer"}}},
        "Changes": {"type": "object", "required": ["records", "deleted", "next", "more"], "properties": {
            "records": {"type": "array", "items": schema_ref("Record"),
                "description": "Records created or updated since the cursor that the caller may read, current values, by id"},
            "deleted": {"type": "array", "items": {"type": "integer"},
                "description": "Ids deleted since the cursor (a record created and deleted in between is in neither list)"},
            "next": {"type": "string", "description": "The cursor of the next poll (pass it as since)"},
            "more": {"type": "boolean", "description": "The page was full: poll again with next right away"}}},
        "OAuthError": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string", "enum": ["invalid_request", "invalid_client", "invalid_grant",
                "unauthorized_client", "unsupported_grant_type", "invalid_scope", "access_denied",
                "invalid_token", "rate_limited", "server_error", "temporarily_unavailable"]},
            "error_description": {"type": "string"}}},
        "Token": {"type": "object", "required": ["access_token", "token_type", "expires_in"], "properties": {
            "access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"}, "scope": {"type": "string"}}},
        "TokenRequest": {"type": "object", "required": ["grant_type"], "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "scope": {"type": "string", "description": "Space-separated subset of the client's scopes"},
            "client_id": {"type": "string", "description": "client_secret_post (else HTTP Basic)"},
            "client_secret": {"type": "string"}}},
        "TokenParam": {"type": "object", "required": ["token"], "properties": {
            "token": {"type": "string"}, "token_type_hint": {"type": "string"},
            "client_id": {"type": "string"}, "client_secret": {"type": "string"}}},
        "Introspection": {"type": "object", "required": ["active"], "properties": {
            "active": {"type": "boolean"}, "scope": {"type": "string"}, "client_id": {"type": "string"},
            "sub": {"type": "string"}, "exp": {"type": "integer"}, "iat": {"type": "integer"},
            "jti": {"type": "string"}, "token_type": {"type": "string"}, "iss": {"type": "string"}}},
        "Pong": {"type": "object", "required": ["pong", "user", "time", "version"], "properties": {
            "pong": {"const": true}, "user": {"type": "integer", "description": "The caller's Odoo user id"},
            "time": {"type": "string", "description": "Database time, UTC"},
            "version": {"type": "string", "description": "Extension version"}}},
        "Created": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "MethodCall": {"type": "object", "description": "The method's keyword arguments, plus an optional Odoo context",
            "properties": {"context": {"type": "object", "description": "Odoo context, e.g. {\"lang\": \"fr_FR\"}"}},
            "additionalProperties": true},
        "MethodResult": {"type": "object", "required": ["result"], "properties": {
            "result": {"description": "What the method returned (recordsets as lists of ids)"}}},
        "Record": {"type": "object", "properties": {"id": {"type": "integer"}},
            "additionalProperties": true},
        "Fields": {"type": "object", "description": "Field name → its description, as Odoo's `fields_get` gives it to the caller",
            "additionalProperties": schema_ref("FieldDescription")},
        "FieldDescription": {"type": "object", "required": ["name", "type", "string", "required", "readonly", "store", "source"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "description": "Odoo field type: char, text, html, integer, float, monetary, boolean, date, datetime, selection, many2one, one2many, many2many, binary, reference, json, properties..."},
                "string": {"type": "string", "description": "Label, in the request's language"},
                "help": {"type": "string", "description": "Help text, in the request's language (absent when the field has none)"},
                "required": {"type": "boolean"}, "readonly": {"type": "boolean"},
                "store": {"type": "boolean", "description": "Stored in the model's table (false for related, _inherits and computed fields)"},
                "company_dependent": {"type": "boolean"},
                "relation": {"type": "string", "description": "Comodel of a relational field"},
                "relation_field": {"type": "string", "description": "Inverse many2one of a one2many"},
                "selection": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string"}},
                    "description": "[value, label] pairs (labels translated); absent when Odoo computes the list in Python"},
                "translate": {"type": "boolean", "description": "Translatable (char, text, html)"},
                "related": {"type": "string", "description": "Path of a related field, e.g. product_tmpl_id.name"},
                "source": {"type": "string", "enum": ["sql", "odoo"],
                    "description": "`sql`: the gateway reads it from the database; `odoo`: a non-stored computed field or a binary, read through Odoo (api-gateway serve --odoo-url)"}}},
        "Health": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string"}, "extension": {"type": "string"}}},
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn oauth_paths() -> Map<String, Value> {
    let form = |schema: &str| json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": schema_ref(schema)}}});
    let auth = json!([{"clientBasic": []}, {}]);
    let v = json!({
        "/api/oauth/token": {"post": {
            "tags": ["oauth"], "operationId": "token", "summary": "Get an access token (client credentials)",
            "description": "Client authentication with HTTP Basic (client_secret_basic) or client_id/client_secret in the body (client_secret_post).",
            "security": auth, "requestBody": form("TokenRequest"),
            "responses": {
                "200": {"description": "Token issued", "content": {"application/json": {"schema": schema_ref("Token")}}},
                "400": {"$ref": "#/components/responses/OAuthError"},
                "401": {"$ref": "#/components/responses/OAuthError"},
                "403": {"$ref": "#/components/responses/OAuthError"},
                "default": {"$ref": "#/components/responses/OAuthError"}}}},
        "/api/oauth/revoke": {"post": {
            "tags": ["oauth"], "operationId": "revoke", "summary": "Revoke an access token (RFC 7009)",
            "description": "200 whether or not the token was live. Client authentication is optional; when given, a client may revoke only its own tokens.",
            "security": auth, "requestBody": form("TokenParam"),
            "responses": {
                "200": {"description": "Revoked (or already unusable)"},
                "400": {"$ref": "#/components/responses/OAuthError"},
                "401": {"$ref": "#/components/responses/OAuthError"},
                "default": {"$ref": "#/components/responses/OAuthError"}}}},
        "/api/oauth/introspect": {"post": {
            "tags": ["oauth"], "operationId": "introspect", "summary": "Introspect a token (RFC 7662)",
            "description": "The caller authenticates with client credentials or a bearer token of any scope.",
            "security": [{"clientBasic": []}, {"bearer": []}, {"oauth2": []}], "requestBody": form("TokenParam"),
            "responses": {
                "200": {"description": "Token state", "content": {"application/json": {"schema": schema_ref("Introspection")}}},
                "400": {"$ref": "#/components/responses/OAuthError"},
                "401": {"$ref": "#/components/responses/OAuthError"},
                "403": {"$ref": "#/components/responses/OAuthError"},
                "429": {"$ref": "#/components/responses/OAuthError"},
                "default": {"$ref": "#/components/responses/OAuthError"}}}},
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(exposed("res.partner", &[]));
        let p = vec!["res.partner".to_string(), "product.*".to_string()];
        assert!(exposed("res.partner", &p));
        assert!(exposed("product.template", &p));
        assert!(!exposed("res.users", &p));
    }

    #[test]
    fn document_shape() {
        let models = json!({"res.partner": {"name": "Contact", "fields": {
            "name": {"type": "char", "string": "Name", "required": true, "readonly": false, "relation": null, "selection": null},
            "type": {"type": "selection", "string": "Type", "required": false, "readonly": false, "relation": null,
                     "selection": [["contact", "Contact"], ["invoice", "Invoice"]]},
            "parent_id": {"type": "many2one", "string": "Parent", "required": false, "readonly": false, "relation": "res.partner", "selection": null},
            "display_name": {"type": "char", "string": "Display Name", "required": false, "readonly": true, "relation": null, "selection": null}}}});
        let doc = generate("0.3.0", &models, "", true);
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/res.partner"]["get"].is_object());
        assert!(doc["paths"]["/api/v1/res.partner/{id}"]["delete"].is_object());
        let s = &doc["components"]["schemas"];
        assert_eq!(
            s["res.partner"]["properties"]["type"]["anyOf"][0]["enum"],
            json!(["contact", "invoice"])
        );
        assert_eq!(
            s["res.partner"]["properties"]["display_name"]["readOnly"],
            true
        );
        assert!(s["res.partner.create"]["properties"]["display_name"].is_null());
        assert_eq!(s["res.partner.create"]["x-odoo-required"], json!(["name"]));
        assert_eq!(
            s["res.partner"]["properties"]["parent_id"]["x-odoo-relation"],
            "res.partner"
        );
        assert!(doc.get("servers").is_none());
        let call = &doc["paths"]["/api/v1/{model}/{id}/call/{method}"]["post"];
        assert_eq!(call["security"][0]["oauth2"], json!(["write"]));
        assert_eq!(
            call["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/MethodResult"
        );
        assert!(doc["paths"]["/api/v1/{model}/call/{method}"]["post"].is_object());
        let changes = &doc["paths"]["/api/v1/{model}/changes"]["get"];
        assert_eq!(
            changes["responses"]["410"]["description"]
                .as_str()
                .map(|d| d.contains("retention")),
            Some(true)
        );
        assert!(
            changes["parameters"]
                .as_array()
                .unwrap()
                .contains(&json!({"$ref": "#/components/parameters/since"}))
        );
        assert!(doc["components"]["parameters"]["since"].is_object());
        assert!(doc["components"]["schemas"]["Changes"]["properties"]["deleted"].is_object());
        assert!(doc["components"]["parameters"]["method"].is_object());
        let file = &doc["paths"]["/api/v1/{model}/{id}/{field}"]["get"];
        assert_eq!(file["security"][0]["oauth2"], json!(["read"]));
        assert!(file["responses"]["304"].is_object());
        assert!(doc["components"]["parameters"]["field"].is_object());
        let without = generate("0.3.0", &models, "", false);
        assert!(without["paths"]["/api/v1/{model}/call/{method}"].is_null());
        assert!(without["paths"]["/api/v1/{model}/{id}/{field}"].is_null());
    }

    #[test]
    fn conditional_requests_are_documented() {
        let doc = generate("0.4.0", &json!({}), "", false);
        let item = &doc["paths"]["/api/v1/{model}/{id}"];
        let list = &doc["paths"]["/api/v1/{model}"];
        for get in [&item["get"], &list["get"]] {
            assert!(
                get["parameters"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"$ref": "#/components/parameters/If-None-Match"}))
            );
            assert!(get["responses"]["200"]["headers"]["ETag"].is_object());
            assert!(get["responses"]["304"].is_object());
        }
        for m in ["put", "patch", "delete"] {
            assert!(
                item[m]["parameters"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"$ref": "#/components/parameters/If-Match"}))
            );
            assert!(item[m]["responses"]["412"].is_object());
        }
        assert!(
            list["get"]["parameters"]
                .as_array()
                .unwrap()
                .contains(&json!({"$ref": "#/components/parameters/after"}))
        );
        assert!(list["get"]["responses"]["200"]["headers"]["Link"].is_object());
        let c = &doc["components"];
        assert_eq!(c["parameters"]["If-Match"]["in"], "header");
        assert!(c["responses"]["PreconditionFailed"].is_object());
        assert!(c["headers"]["ETag"].is_object());
    }

    #[test]
    fn labels_help_and_fields_read_through_odoo_are_documented() {
        let models = json!({"product.product": {"name": "Product Variant", "fields": {
            "name": {"type": "char", "string": "Name", "required": true, "readonly": false,
                     "store": false, "related": "product_tmpl_id.name", "source": "sql"},
            "lst_price": {"type": "float", "string": "Sales Price", "required": false, "readonly": false,
                          "store": false, "source": "odoo",
                          "help": "The sale price is managed from the product template."},
            "default_code": {"type": "char", "string": "Internal Reference", "required": false,
                             "readonly": false, "store": true, "source": "sql"}}}});
        let doc = generate("0.5.0", &models, "", false);
        let s = &doc["components"]["schemas"];
        let price = &s["product.product"]["properties"]["lst_price"];
        assert_eq!(price["title"], "Sales Price");
        let description = price["description"].as_str().unwrap();
        assert!(description.starts_with("The sale price is managed from the product template."));
        assert!(description.contains("--odoo-url"), "{description}");
        assert_eq!(price["readOnly"], true);
        assert_eq!(price["x-odoo-source"], "odoo");
        assert_eq!(s["product.product"]["properties"]["name"]["title"], "Name");
        assert!(s["product.product"]["properties"]["name"]["x-odoo-source"].is_null());
        // Only stored fields are written with the record.
        let create = &s["product.product.create"]["properties"];
        assert!(create["default_code"].is_object());
        assert!(create["lst_price"].is_null() && create["name"].is_null());
        let fields = &doc["paths"]["/api/v1/{model}/fields"]["get"];
        assert_eq!(fields["security"][0]["oauth2"], json!(["read"]));
        for p in ["lang", "Accept-Language"] {
            let r = json!({"$ref": format!("#/components/parameters/{p}")});
            assert!(fields["parameters"].as_array().unwrap().contains(&r));
            assert!(
                doc["paths"]["/api/v1/{model}"]["get"]["parameters"]
                    .as_array()
                    .unwrap()
                    .contains(&r)
            );
            assert!(
                doc["paths"]["/api/v1/{model}/{id}"]["get"]["parameters"]
                    .as_array()
                    .unwrap()
                    .contains(&r)
            );
        }
        assert!(s["FieldDescription"]["properties"]["source"]["enum"].is_array());
    }
}
