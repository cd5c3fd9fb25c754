//! search_read / search_count / read: the user's domain AND the record rules, compiled to one
//! parameterised statement that returns the records as a JSON array shaped like Odoo's
//! `search_read` (many2one as `[id, display_name]`, x2many as id lists, translations in the
//! user's language with en_US fallback, False for empty values).
use crate::data::context::{self, UserContext};
use crate::data::meta::{self, ModelMeta};
use crate::data::values::Shaper;
use crate::data::{Operation, bad_input, params};
use crate::error::{raise, spi};
use crate::spi::RawJsonb;
use api_gateway_core::domain::{
    self, CompileOptions, Domain, DomainError, ModelInfo, Param, Schema,
};
use api_gateway_core::fields::{self, Source};
use elsa::FrozenMap;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// The models a compilation may visit, loaded on demand, plus the user's read rules on them.
pub struct Models<'u> {
    user: &'u UserContext,
    /// Append-only (`elsa`): a model handed out by reference stays where it is while `self` lives,
    /// which [`Schema::model`] needs. The box holds the `Rc` itself in place, so that both a
    /// reference and a clone of it can be handed out.
    #[allow(clippy::redundant_allocation)]
    loaded: FrozenMap<String, Box<Rc<ModelMeta>>>,
    /// A comodel the caller's domain searched without read access.
    denied: RefCell<Option<String>>,
}

impl<'u> Models<'u> {
    /// `model` is the model the user context was loaded for: its fingerprint came with it.
    pub fn new(user: &'u UserContext, model: &str) -> Self {
        let models = Models {
            user,
            loaded: FrozenMap::new(),
            denied: RefCell::new(None),
        };
        let m = meta::model_with(model, user.fingerprint);
        models.loaded.insert(model.to_string(), Box::new(m));
        models
    }

    /// A comodel if it can be served, else None (never raises).
    pub fn try_get(&self, model: &str) -> Option<Rc<ModelMeta>> {
        self.try_get_ref(model).cloned()
    }

    fn try_get_ref(&self, model: &str) -> Option<&Rc<ModelMeta>> {
        if let Some(m) = self.loaded.get(model) {
            return Some(m);
        }
        let m = meta::try_model(model).ok()?;
        Some(self.loaded.insert(model.to_string(), Box::new(m)))
    }

    pub fn get(&self, model: &str) -> Rc<ModelMeta> {
        if let Some(m) = self.loaded.get(model) {
            return m.clone();
        }
        let m = meta::model(model);
        self.loaded.insert(model.to_string(), Box::new(m)).clone()
    }
}

impl Schema for Models<'_> {
    fn model(&self, name: &str) -> Option<&ModelInfo> {
        Some(&self.try_get_ref(name)?.info)
    }

    fn related(&self, model: &str, field: &str) -> Option<String> {
        self.try_get(model)?.fields.get(field)?.related.clone()
    }

    /// The comodel's read rule; a comodel the user has no read right on makes the search fail
    /// (Odoo raises AccessError there), remembered in `denied` so it becomes 42501.
    fn read_rule(&self, model: &str) -> Result<Option<Domain>, DomainError> {
        if self.user.superuser {
            return Ok(None);
        }
        let ctx = context::load(self.user.uid, model, Operation::Read);
        if !ctx.allowed {
            *self.denied.borrow_mut() = Some(model.to_string());
            return Err(DomainError::InvalidValue(format!(
                "no read access to {model}"
            )));
        }
        Ok(ctx.rule_domain(model))
    }
}

pub struct Query {
    pub from_where: String,
    pub params: Vec<Param>,
}

/// FROM + WHERE for the model's rows visible to the user for `op`, matching `domain`.
pub fn visible_rows(
    user: &UserContext,
    models: &Models,
    model: &ModelMeta,
    domain: &Domain,
    active_test: bool,
) -> Query {
    let rule = user.rule_domain(&model.info.model);
    // Conditions the model's own `_search` adds (ir.attachment: res_field = False).
    let with_default;
    let domain = match api_gateway_core::fields::search_default(&model.info.model, domain) {
        Some(extra) => {
            with_default = domain::and(vec![domain.clone(), extra]);
            &with_default
        }
        None => domain,
    };
    let opts = CompileOptions {
        lang: &user.lang,
        company_id: user.company_id,
        active_test,
    };
    // The caller's domain alone first: its mistakes are bad input (22023)...
    if let Err(e) = domain::compile(domain, &model.info, models, "t", 1, &opts) {
        if let Some(comodel) = models.denied.borrow().clone() {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "user {} may not read records of model {comodel} (searched through the domain)",
                    user.uid
                ),
                None,
            );
        }
        bad_input("domain", &e);
    }
    // ...so what fails once the rules are added is a rule the gateway cannot enforce: fail closed.
    let sql = domain::compile_search(domain, rule.as_ref(), &model.info, models, "t", 1, &opts)
        .unwrap_or_else(|e| {
            let (id, name, why) = user.culprit_rule(&model.info.model, |d| {
                domain::compile_search(&Domain::True, Some(d), &model.info, models, "t", 1, &opts)
                    .err()
            });
            if why.is_none() && matches!(e, DomainError::TooComplex(_)) {
                // no rule fails alone: the caller's domain and the rules together pass a limit
                bad_input("domain", &e);
            }
            context::fail_closed(
                &model.info.model,
                id,
                &name,
                &why.unwrap_or_else(|| e.to_string()),
            )
        });
    let (mut text, mut params) = (sql.text, sql.params);
    // ir.attachment: Odoo's own access check (the attached record's) on top of ACL and rules.
    if model.info.model == "ir.attachment" && !user.superuser {
        let (cond, extra) = crate::data::attachment::access(user, models, params.len() + 1);
        text = format!("({text}) AND {cond}");
        params.extend(extra);
    }
    Query {
        from_where: format!("FROM public.{} t WHERE {}", model.table_ident(), text),
        params,
    }
}

/// A search Odoo answers with no records where the access right is missing, instead of
/// refusing (`ir.attachment._search`; the decision is `fields::search_without_access`).
fn searches_nothing(user: &UserContext, model: &str, domain: &Domain) -> bool {
    !user.allowed
        && api_gateway_core::fields::search_without_access(model, domain)
            == api_gateway_core::fields::WithoutAccess::Empty
}

/// Parse the caller's domain (Python-literal or JSON text).
pub fn parse_domain(text: Option<&str>) -> Domain {
    let text = text.unwrap_or("[]");
    if text.len() > 256 * 1024 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "invalid domain: longer than 256 KiB",
            None,
        );
    }
    domain::parse(text).unwrap_or_else(|e| bad_input("domain", &e))
}

/// Whether the user may read field `name` of `model` (its `groups`).
pub fn field_readable(user: &UserContext, model: &ModelMeta, name: &str) -> bool {
    model
        .fields
        .get(name)
        .is_none_or(|f| api_gateway_core::fields::visible(&f.groups, &user.groups, user.superuser))
}

/// One requested field checked as Odoo checks it (unknown: 22023; restricted to groups the user
/// is not in: 42501), and where its value comes from (`fields::source`), with the reason SQL
/// cannot read it.
fn requested_field(
    user: &UserContext,
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    name: &str,
) -> (Source, Option<String>) {
    if name != "display_name" && !model.info.fields.contains_key(name) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "invalid field list: unknown field {}.{}",
                model.info.model,
                truncate(name)
            ),
            None,
        )
    }
    // Odoo checks the field's groups before anything else (AccessError).
    if !field_readable(user, model, name) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "user {} may not read field {}.{name}: it is restricted to groups the user is not in",
                user.uid, model.info.model
            ),
            None,
        )
    }
    let servable = shaper.servable(model, name);
    let ttype = model
        .info
        .fields
        .get(name)
        .map(|f| f.ttype.as_str())
        .unwrap_or("char");
    (
        fields::source(name, ttype, servable.is_ok()),
        servable.err(),
    )
}

/// The requested fields split by source: (read in SQL, `id` first; filled by Odoo), in the
/// order asked, each checked once. NULL or empty asks for every stored field: all SQL.
pub fn split_fields(
    uid: i32,
    model_name: &str,
    fields: Option<Vec<Option<String>>>,
) -> (Option<Vec<String>>, Vec<String>) {
    crate::odoo::require_odoo("fields_in_sql", crate::data::TABLES);
    let user = context::load(uid, model_name, Operation::Read);
    let models = Models::new(&user, model_name);
    let model = models.get(model_name);
    user.require_access(model_name, Operation::Read);
    let list: Vec<String> = fields.into_iter().flatten().flatten().collect();
    if list.is_empty() {
        return (None, vec![]);
    }
    let shaper = Shaper::new(&models, &user, vec![], 1, 2);
    let (mut sql, mut odoo) = (vec!["id".to_string()], vec![]);
    for name in list {
        // A nested read (`name{...}`) is SQL's (its sub-fields are checked there).
        if api_gateway_core::nested::is_nested(&name) {
            sql.push(name);
            continue;
        }
        let target = match requested_field(&user, &shaper, &model, &name).0 {
            Source::Sql => &mut sql,
            Source::Odoo => &mut odoo,
        };
        if !target.contains(&name) {
            target.push(name);
        }
    }
    (Some(sql), odoo)
}

/// The fields to return: the ones asked for (each checked), or every stored readable field.
pub(crate) fn select_fields(
    user: &UserContext,
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    fields: Option<Vec<Option<String>>>,
) -> Vec<String> {
    match fields {
        Some(list) if !list.is_empty() => {
            let mut out: Vec<String> = vec![];
            for name in list.into_iter().flatten() {
                if let (Source::Odoo, why) = requested_field(user, shaper, model, &name) {
                    raise(
                        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                        format!(
                            "invalid field list: {}",
                            why.unwrap_or_else(|| format!(
                                "{}.{name} is not stored in the database",
                                model.info.model
                            ))
                        ),
                        Some(
                            "non-stored computed and binary fields need Odoo itself: start api-gateway serve with --odoo-url",
                        ),
                    )
                }
                if !out.contains(&name) {
                    out.push(name)
                }
            }
            if !out.iter().any(|f| f == "id") {
                out.insert(0, "id".into());
            }
            out
        }
        _ => {
            let mut names: Vec<String> = model
                .info
                .fields
                .values()
                .filter(|f| {
                    f.store
                        && f.ttype != "binary"
                        && field_readable(user, model, &f.name)
                        && shaper.servable(model, &f.name).is_ok()
                        && shaper.x2many_readable(model, &f.name)
                })
                .map(|f| f.name.clone())
                .collect();
            names.sort_by(|a, b| (a != "id", a).cmp(&(b != "id", b)));
            names
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `jsonb_build_object` takes at most 100 arguments: build in chunks and concatenate.
pub(crate) fn object_sql(pairs: &[(String, String)]) -> String {
    let chunks: Vec<String> = pairs
        .chunks(40)
        .map(|chunk| {
            let args: Vec<String> = chunk.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
            format!("jsonb_build_object({})", args.join(", "))
        })
        .collect();
    if chunks.is_empty() {
        "'{}'::jsonb".into()
    } else {
        chunks.join(" || ")
    }
}

/// One term of ORDER BY: the field, its SQL expression over the row `t`, descending or not.
pub struct OrderTerm {
    pub name: String,
    pub expr: String,
    pub translated: bool,
    pub desc: bool,
}

/// The terms of a validated `order` string (the model's `_order` by default), `id` last.
fn order_terms(model: &ModelMeta, order: Option<&str>, lang_param: usize) -> Vec<OrderTerm> {
    let parsed = match order.map(str::trim).filter(|o| !o.is_empty()) {
        Some(o) => domain::parse_order(o, &model.info).unwrap_or_else(|e| bad_input("order", &e)),
        // The model's own _order may name things we cannot sort on in SQL; fall back to id.
        None => domain::parse_order(&model.order, &model.info).unwrap_or_default(),
    };
    let mut terms: Vec<OrderTerm> = parsed
        .iter()
        .map(|(name, desc)| {
            let f = &model.info.fields[name];
            let column = crate::error::ident(name);
            let expr = if f.translate {
                format!("coalesce(t.{column}->>${lang_param}, t.{column}->>'en_US')")
            } else {
                format!("t.{column}")
            };
            OrderTerm {
                name: name.clone(),
                expr,
                translated: f.translate,
                desc: *desc,
            }
        })
        .collect();
    if !parsed.iter().any(|(n, _)| n == "id") {
        terms.push(OrderTerm {
            name: "id".into(),
            expr: "t.\"id\"".into(),
            translated: false,
            desc: false,
        });
    }
    terms
}

fn order_by(terms: &[OrderTerm]) -> String {
    terms
        .iter()
        .map(|t| format!("{} {}", t.expr, if t.desc { "DESC" } else { "ASC" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ORDER BY for a validated `order` string (the model's `_order` by default), `id` last.
fn order_sql(model: &ModelMeta, order: Option<&str>, lang_param: usize) -> String {
    order_by(&order_terms(model, order, lang_param))
}

/// The order as a cursor pins it: `name asc,id asc`.
fn order_signature(terms: &[OrderTerm]) -> String {
    terms
        .iter()
        .map(|t| format!("{} {}", t.name, if t.desc { "desc" } else { "asc" }))
        .collect::<Vec<_>>()
        .join(",")
}

/// The key a versioned read carries the row version under, removed before it is returned.
const VERSION_KEY: &str = "__agw_version";

pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// `limit` NULL: the settings' default; capped by the settings' maximum. Negative: 22023.
pub fn page(user: &UserContext, limit: Option<i32>, offset: Option<i32>) -> Page {
    let (default, max) = user.limits;
    let limit = match limit {
        None => default,
        Some(l) if l < 0 => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid limit {l}: must be >= 0"),
            None,
        ),
        Some(l) => l.min(max),
    };
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid offset {offset}: must be >= 0"),
            None,
        );
    }
    Page {
        limit: i64::from(limit),
        offset: i64::from(offset),
    }
}

pub struct Request<'a> {
    pub uid: i32,
    pub model: &'a str,
    pub domain: Domain,
    pub fields: Option<Vec<Option<String>>>,
    /// (limit, offset) as given; None reads every match (used by `read`).
    pub page: Option<(Option<i32>, Option<i32>)>,
    pub order: Option<&'a str>,
    pub active_test: bool,
    /// Return the first record (or NULL) instead of the array.
    pub single: bool,
    /// With `single`: return `{"record": <record>, "version": "<row version>"}` instead, the
    /// version being the row's `xmin` (it changes with every update of the row; see ETags).
    pub version: bool,
    /// The language to read in (an installed code, already resolved), instead of the user's.
    pub lang: Option<String>,
    /// A `web_read` specification (then `fields` is ignored): nested reads shaped as `web_read`.
    pub specification: Option<Vec<api_gateway_core::nested::Node>>,
}

/// The (key, SQL value) pairs of each record: a flat field list as before, or a nested tree
/// (a `fields` list with `{...}`, or a specification) built by `nested.rs`.
fn record_pairs(
    user: &UserContext,
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    fields: Option<Vec<Option<String>>>,
    specification: Option<Vec<api_gateway_core::nested::Node>>,
) -> Vec<(String, String)> {
    use crate::data::nested::{self, Style};
    let tree = match specification {
        Some(nodes) => Some((nodes, Style::Web)),
        None => nested::fields_tree(&fields).map(|nodes| (nodes, Style::Read)),
    };
    if let Some((nodes, style)) = tree {
        return nested::Builder::new(shaper, user, style).pairs(model, "t", &nodes, "");
    }
    select_fields(user, shaper, model, fields)
        .iter()
        .map(|n| (n.clone(), shaper.value(model, n)))
        .collect()
}

/// The records as a JSON array (for `read`: the first record, or NULL).
pub fn search_read(req: Request) -> Option<RawJsonb> {
    crate::odoo::require_odoo("search_read", crate::data::TABLES);
    let mut user = context::load(req.uid, req.model, Operation::Read);
    if let Some(lang) = &req.lang {
        user.lang = lang.clone();
    }
    let models = Models::new(&user, req.model);
    let model = models.get(req.model);
    if !req.single && searches_nothing(&user, req.model, &req.domain) {
        return Some(RawJsonb::from_json_text(b"[]".to_vec()));
    }
    user.require_access(req.model, Operation::Read);
    let page = req.page.map(|(limit, offset)| page(&user, limit, offset));
    let q = visible_rows(&user, &models, &model, &req.domain, req.active_test);
    let mut params = q.params;
    params.push(Param::Text(user.lang.clone()));
    let lang_param = params.len();
    params.push(Param::Int(user.company_id));
    let company_param = params.len();
    let shaper = Shaper::new(&models, &user, params, lang_param, company_param);
    let mut pairs = record_pairs(&user, &shaper, &model, req.fields, req.specification);
    let version = req.single && req.version;
    // The columns the page carries, before the row version (not a column of the table) joins.
    let columns = projection(&[
        &object_sql(&pairs),
        &order_sql(&model, req.order, lang_param),
    ]);
    if version {
        pairs.push((VERSION_KEY.into(), "t.\"__agw_xmin\"".into()));
    }
    let mut params = shaper.into_params();
    let order = order_sql(&model, req.order, lang_param);
    let mut page_sql = String::new();
    if let Some(p) = &page {
        params.push(Param::Int(p.limit));
        params.push(Param::Int(p.offset));
        page_sql = format!(
            " LIMIT ${}::int8 OFFSET ${}::int8",
            params.len() - 1,
            params.len()
        );
    }
    let obj = object_sql(&pairs);
    let sql = format!(
        // The page's order again in the aggregate (it ends with id, so it is total): cheaper
        // than numbering the rows with a window function.
        "SELECT coalesce(jsonb_agg({obj} ORDER BY {order}), '[]'::jsonb) FROM ( \
           SELECT {columns}{xmin} {from_where} \
            ORDER BY {order}{page_sql}) t",
        from_where = q.from_where,
        xmin = if version {
            ", t.xmin::text AS \"__agw_xmin\""
        } else {
            ""
        },
    );
    // A translation read or compared in the user's language: a call run on the cache re-checks it.
    if reads_param(&sql, &params, &user.lang) {
        crate::data::cache::note_partner_facts();
    }
    let sql = if version {
        format!(
            "SELECT CASE WHEN r IS NOT NULL THEN jsonb_build_object('record', r - '{VERSION_KEY}', \
             'version', r -> '{VERSION_KEY}') END FROM (SELECT ({sql}) -> 0 AS r) v"
        )
    } else if req.single {
        format!("SELECT ({sql}) -> 0")
    } else {
        sql
    };
    run_json(&sql, &params)
}

/// A page of `search_page`: the records after `after` (a cursor of an earlier page of the same
/// query), and the cursor of the next page (NULL on the last one).
pub struct PageRequest<'a> {
    pub uid: i32,
    pub model: &'a str,
    pub domain_text: &'a str,
    pub fields: Option<Vec<Option<String>>>,
    pub limit: Option<i32>,
    pub order: Option<&'a str>,
    pub after: Option<&'a str>,
    /// As `Request::lang`; the cursor pins it.
    pub lang: Option<String>,
}

/// The signing keys the extension keeps: (kid, secret), the current one first.
pub(crate) fn signing_keys() -> Vec<(String, String)> {
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            "SELECT jwt_kid, jwt_secret FROM api_gateway.settings \
             UNION ALL SELECT kid, secret FROM api_gateway.signing_key WHERE valid_until > now()",
            &[],
            false,
        );
        let t = spi(c.select(plan, None, &[]));
        t.map(|r| {
            (
                spi(r.get::<String>(1)).unwrap_or_default(),
                spi(r.get::<String>(2)).unwrap_or_default(),
            )
        })
        .collect()
    })
}

/// The columns of `table` with a NOT NULL constraint (keyset conditions need no NULL cases there).
fn not_null_columns(table: &str) -> Vec<String> {
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = to_regclass('public.' || quote_ident($1)) AND attnotnull AND attnum > 0",
            &[PgBuiltInOids::TEXTOID],
            false,
        );
        let t = spi(c.select(plan, None, &[table.into()]));
        t.filter_map(|r| spi(r.get::<String>(1))).collect()
    })
}

fn bad_cursor(e: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("invalid cursor: {e}"),
        Some("pass back the cursor of the previous page unchanged, with the same domain and order"),
    )
}

/// Keyset pagination: `{"records": [...], "next": "<cursor>" | null}`.
pub fn search_page(req: PageRequest) -> RawJsonb {
    use api_gateway_core::cursor;
    crate::odoo::require_odoo("search_page", crate::data::TABLES);
    let mut user = context::load(req.uid, req.model, Operation::Read);
    if let Some(lang) = &req.lang {
        user.lang = lang.clone();
    }
    let models = Models::new(&user, req.model);
    let model = models.get(req.model);
    let domain = parse_domain(Some(req.domain_text));
    if searches_nothing(&user, req.model, &domain) {
        return RawJsonb::from_json_text(br#"{"records": [], "next": null}"#.to_vec());
    }
    user.require_access(req.model, Operation::Read);
    let limit = page(&user, req.limit, None).limit;
    let q = visible_rows(&user, &models, &model, &domain, true);
    let mut params = q.params;
    params.push(Param::Text(user.lang.clone()));
    let lang_param = params.len();
    params.push(Param::Int(user.company_id));
    let company_param = params.len();
    let shaper = Shaper::new(&models, &user, params, lang_param, company_param);
    let pairs = record_pairs(&user, &shaper, &model, req.fields, None);
    let mut params = shaper.into_params();
    let terms = order_terms(&model, req.order, lang_param);
    let signature = order_signature(&terms);
    let keys = signing_keys();
    let Some((kid, secret)) = keys.first().cloned() else {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "api_gateway.settings has no row",
            None,
        )
    };
    let mut keyset = String::new();
    if let Some(token) = req.after {
        let claimed = cursor::claimed_kid(token).unwrap_or_else(|e| bad_cursor(e));
        let secret = keys
            .iter()
            .find(|(k, _)| *k == claimed)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| bad_cursor(cursor::CursorError::BadSignature));
        let c = cursor::open(
            token,
            &cursor::derive_key(&secret),
            req.model,
            req.uid,
            &signature,
            req.domain_text,
            &user.lang,
        )
        .unwrap_or_else(|e| bad_cursor(e));
        params.push(Param::Text(serde_json::Value::Object(c.key).to_string()));
        let k = params.len();
        let key_exprs: Vec<String> = terms
            .iter()
            .map(|t| {
                if t.translated {
                    format!("(${k}::jsonb->>'{}')", t.name)
                } else {
                    format!(
                        "(SELECT k.{} FROM jsonb_populate_record(NULL::public.{}, ${k}::jsonb) k)",
                        crate::error::ident(&t.name),
                        model.table_ident()
                    )
                }
            })
            .collect();
        let not_null = not_null_columns(model.table());
        let cursor_terms: Vec<cursor::Term> = terms
            .iter()
            .zip(&key_exprs)
            .map(|(t, key)| cursor::Term {
                row: &t.expr,
                key,
                desc: t.desc,
                not_null: t.name == "id" || (!t.translated && not_null.contains(&t.name)),
            })
            .collect();
        keyset = format!(" AND {}", cursor::keyset_sql(&cursor_terms));
    }
    let key_obj = object_sql(
        &terms
            .iter()
            .map(|t| (t.name.clone(), format!("to_jsonb({})", t.expr)))
            .collect::<Vec<_>>(),
    );
    params.push(Param::Int(limit));
    let l = params.len();
    let order = order_by(&terms);
    // LIMIT n + 1 tells whether there is a next page; the key of the n-th row starts it.
    let sql = format!(
        "SELECT coalesce(jsonb_agg({obj} ORDER BY t.\"__agw_n\") FILTER (WHERE t.\"__agw_n\" <= ${l}), '[]'::jsonb), \
                CASE WHEN count(*) > ${l} AND ${l} > 0 THEN \
                  ((array_agg(t.\"__agw_key\" ORDER BY t.\"__agw_n\"))[${l}::int4])::text END \
           FROM (SELECT t.*, row_number() OVER (ORDER BY {order}) AS \"__agw_n\" FROM ( \
             SELECT t.*, {key_obj} AS \"__agw_key\" {from_where}{keyset} \
              ORDER BY {order} LIMIT ${l}::int8 + 1) t) t",
        obj = object_sql(&pairs),
        from_where = q.from_where,
    );
    let args = params::datums(&params);
    let (records, last) = Spi::connect(|c| {
        let plan = crate::spi::plan_cached(c, &sql, &params::types(&params), false);
        let t = spi(c.select(&*plan, Some(1), &args)).first();
        let last: Option<String> = spi(t.get::<String>(2));
        let datum = spi(t.get_datum_by_ordinal(1));
        // SAFETY: column 1 is the jsonb of this result row.
        let records = datum.map(|d| unsafe { crate::spi::transfer_jsonb(d) });
        (records, last)
    });
    let next = last.map(|key| {
        let key = match serde_json::from_str::<serde_json::Value>(&key) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "search_page: the sort key is not an object",
                None,
            ),
        };
        let c = cursor::Cursor {
            v: 1,
            kid,
            model: req.model.to_string(),
            uid: req.uid,
            order: signature.clone(),
            domain: cursor::domain_digest(req.domain_text),
            lang: user.lang.clone(),
            key,
        };
        cursor::sign(&c, &cursor::derive_key(&secret))
    });
    let Some(records) = records else {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "search_page returned no row",
            None,
        )
    };
    Spi::connect(|c| {
        let args: Vec<pgrx::datum::DatumWithOid> = vec![records.into(), next.as_deref().into()];
        let plan = crate::spi::plan(
            c,
            "SELECT jsonb_build_object('records', $1::jsonb, 'next', $2::text)",
            &[PgBuiltInOids::JSONBOID, PgBuiltInOids::TEXTOID],
            false,
        );
        let t = spi(c.select(plan, Some(1), &args));
        crate::spi::first_jsonb(t)
    })
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "search_page returned no row",
            None,
        )
    })
}

/// The columns of row `t` that the outer query's expressions name (`t."col"`, `t.id`, the alias
/// quoted or not), so the
/// page carries only those through its sort; `t.*` if they name the row any other way.
fn projection(texts: &[&str]) -> String {
    let mut columns: Vec<String> = vec![];
    for text in texts {
        // The alias may be written quoted, or as a row value: `"t".x`, `(t).x`.
        let text = &text.replace("\"t\".", "t.").replace("(t).", "t.");
        let bytes = text.as_bytes();
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        // The whole row used as a value (`to_jsonb(t)`, `"t"`): every column.
        let whole_row = text.contains("\"t\"")
            || (0..bytes.len()).any(|k| {
                bytes[k] == b't'
                    && (k == 0 || !(ident(bytes[k - 1]) || bytes[k - 1] == b'.'))
                    && bytes
                        .get(k + 1)
                        .is_none_or(|&n| !ident(n) && n != b'.' && n != b'\'')
            });
        if whole_row {
            return "t.*".into();
        }
        let mut i = 0;
        while let Some(at) = text[i..].find("t.") {
            let at = i + at;
            i = at + 2;
            let starts_name = at == 0 || {
                let b = bytes[at - 1];
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b'"' || b == b'.')
            };
            if !starts_name {
                continue;
            }
            let rest = &text[at + 2..];
            let column = if let Some(quoted) = rest.strip_prefix('"') {
                match quoted.find('"') {
                    Some(end) if meta::plain_identifier(&quoted[..end]) => &quoted[..end],
                    _ => return "t.*".into(),
                }
            } else if rest.starts_with("id")
                && !rest[2..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            {
                "id"
            } else {
                return "t.*".into();
            };
            if !columns.iter().any(|c| c == column) {
                columns.push(column.to_string());
            }
        }
    }
    if columns.is_empty() {
        return "t.id".into();
    }
    columns
        .iter()
        .map(|c| format!("t.{}", crate::error::ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `sql` reads a text parameter whose value is `value` (`$n` not followed by a digit).
fn reads_param(sql: &str, params: &[Param], value: &str) -> bool {
    params.iter().enumerate().any(|(i, p)| {
        matches!(p, Param::Text(v) if v == value) && {
            let tag = format!("${}", i + 1);
            sql.match_indices(&tag)
                .any(|(at, _)| !sql[at + tag.len()..].starts_with(|c: char| c.is_ascii_digit()))
        }
    })
}

pub fn run_json(sql: &str, params: &[Param]) -> Option<RawJsonb> {
    run_json_with(sql, params, None)
}

/// The prepared plans of one remembered statement (`crate::data::cache::remembered`).
#[derive(Default)]
pub struct Plans {
    plain: RefCell<Option<Rc<pgrx::spi::OwnedPreparedStatement>>>,
    wrapped: RefCell<Option<Rc<pgrx::spi::OwnedPreparedStatement>>>,
}

/// Run a data statement returning one jsonb, with its plans kept in `plans` when given.
pub fn run_json_with(sql: &str, params: &[Param], plans: Option<&Plans>) -> Option<RawJsonb> {
    crate::data::cache::capture(sql, params);
    // A call run on the cache without a probe: the statement re-checks it (crate::data::cache).
    if let Some(extra) = crate::data::cache::check_params() {
        let params = [params, &extra[..]].concat();
        let args = params::datums(&params);
        let (json, ok) = Spi::connect(|c| {
            let kept = plans.and_then(|p| p.wrapped.borrow().clone());
            let plan = kept.unwrap_or_else(|| {
                let wrapped = crate::data::cache::wrap_sql(sql, params.len() - extra.len() + 1);
                let plan = crate::spi::plan_cached(c, &wrapped, &params::types(&params), false);
                if let Some(p) = plans {
                    *p.wrapped.borrow_mut() = Some(plan.clone());
                }
                plan
            });
            let t = spi(c.select(&*plan, Some(1), &args)).first();
            let ok = spi(t.get::<bool>(2));
            let json = crate::spi::first_jsonb(t);
            let ok = ok.unwrap_or(json.is_some());
            (json, ok)
        });
        crate::data::cache::checked(ok);
        return json;
    }
    let args = params::datums(params);
    Spi::connect(|c| {
        let kept = plans.and_then(|p| p.plain.borrow().clone());
        let plan = kept.unwrap_or_else(|| {
            let plan = crate::spi::plan_cached(c, sql, &params::types(params), false);
            if let Some(p) = plans {
                *p.plain.borrow_mut() = Some(plan.clone());
            }
            plan
        });
        let t = spi(c.select(&*plan, Some(1), &args));
        crate::spi::first_jsonb(t)
    })
}

pub fn search_count(uid: i32, model_name: &str, domain: Domain, lang: Option<String>) -> i64 {
    crate::odoo::require_odoo("search_count", crate::data::TABLES);
    let mut user = context::load(uid, model_name, Operation::Read);
    if let Some(lang) = lang {
        // Conditions on translated fields compare the values in this language.
        user.lang = lang;
    }
    let models = Models::new(&user, model_name);
    let model = models.get(model_name);
    if searches_nothing(&user, model_name, &domain) {
        return 0;
    }
    user.require_access(model_name, Operation::Read);
    let q = visible_rows(&user, &models, &model, &domain, true);
    let sql = format!("SELECT count(*) {}", q.from_where);
    let args = params::datums(&q.params);
    Spi::connect(|c| {
        spi(c
            .select(sql.as_str(), Some(1), &args)
            .and_then(|t| t.first().get::<i64>(1)))
        .unwrap_or(0)
    })
}

/// `(id, '=', id)` as a domain.
pub fn id_domain(id: i32) -> Domain {
    Domain::Leaf(domain::Leaf {
        path: "id".into(),
        op: domain::Operator::Eq,
        value: domain::LeafValue::Value(domain::Value::Int(i64::from(id))),
    })
}
