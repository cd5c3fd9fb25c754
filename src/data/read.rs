//! search_read / search_count / read: the user's domain AND the record rules, compiled to one
//! parameterised statement that returns the records as a JSON array shaped like Odoo's
//! `search_read`. What the statement says is decided in `api_gateway_core::odoo`; this module
//! answers its questions ([`ReadFacts`]) with SPI and runs what it builds.
use crate::data::context::{self, UserContext};
use crate::data::meta::{self, ModelMeta};
use crate::data::{Operation, bad_input, params, refuse};
use crate::error::{raise, spi};
use crate::spi::RawJsonb;
use api_gateway_core::domain::{self, Domain, DomainError, ModelInfo, Param, Schema};
use api_gateway_core::nested::Node;
use api_gateway_core::odoo::ReadFacts;
use api_gateway_core::odoo::select::{self, Shape};
use api_gateway_core::odoo::shape::Shaper;
use api_gateway_core::odoo::visible::{self, Query, Rules};
use elsa::FrozenMap;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
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
    /// Tables already checked for existence.
    tables: RefCell<HashMap<String, bool>>,
    /// (read allowed, read rule) per comodel, loaded once per request.
    access: RefCell<HashMap<String, (bool, Option<Domain>)>>,
}

impl<'u> Models<'u> {
    /// `model` is the model the user context was loaded for: its fingerprint came with it.
    pub fn new(user: &'u UserContext, model: &str) -> Self {
        let models = Models {
            user,
            loaded: FrozenMap::new(),
            denied: RefCell::new(None),
            tables: RefCell::new(HashMap::new()),
            access: RefCell::new(HashMap::new()),
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

    /// A shaper of values read by this request's user, the statement's parameters so far given.
    pub fn shaper(
        &self,
        params: Vec<Param>,
        lang_param: usize,
        company_param: usize,
    ) -> Shaper<'_> {
        Shaper::new(self, self.user.caller(), params, lang_param, company_param)
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
        let (allowed, rule) = self.read_access(model);
        if !allowed {
            *self.denied.borrow_mut() = Some(model.to_string());
            return Err(DomainError::InvalidValue(format!(
                "no read access to {model}"
            )));
        }
        Ok(rule)
    }
}

impl ReadFacts for Models<'_> {
    fn meta(&self, model: &str) -> Option<Rc<ModelMeta>> {
        self.try_get(model)
    }

    fn table_exists(&self, table: &str) -> bool {
        if let Some(known) = self.tables.borrow().get(table) {
            return *known;
        }
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT to_regclass('public.' || quote_ident($1)) IS NOT NULL",
            &[table.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        self.tables.borrow_mut().insert(table.to_string(), exists);
        exists
    }

    fn denied_comodel(&self) -> Option<String> {
        self.denied.borrow().clone()
    }

    fn read_access(&self, model: &str) -> (bool, Option<Domain>) {
        if let Some(known) = self.access.borrow().get(model) {
            return known.clone();
        }
        let ctx = context::load(self.user.uid, model, Operation::Read);
        let loaded = (ctx.allowed, ctx.rule_domain(model));
        self.access
            .borrow_mut()
            .insert(model.to_string(), loaded.clone());
        loaded
    }
}

/// FROM + WHERE for the model's rows visible to the user, matching `domain`
/// (`api_gateway_core::odoo::visible`).
pub fn visible_rows(
    user: &UserContext,
    models: &Models,
    model: &ModelMeta,
    domain: &Domain,
    active_test: bool,
) -> Query {
    let rule = user.rule_domain(&model.info.model);
    let rules = Rules {
        domain: rule.as_ref(),
        rules: &user.rules,
        eval: &|| user.eval_context(),
    };
    visible::visible_rows(
        models,
        &user.caller(),
        model,
        domain,
        &rules,
        active_test,
        crate::data::attachment::facts,
    )
    .unwrap_or_else(|e| refuse(e))
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
    select::field_readable(&user.caller(), model, name)
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
    let shaper = models.shaper(vec![], 1, 2);
    let (sql, odoo) = select::split_fields(&shaper, &model, list).unwrap_or_else(|e| refuse(e));
    (Some(sql), odoo)
}

/// The first parameters of a read statement: the rows' own, then the reader's language and
/// company (their numbers are the shaper's `lang_param` and `company_param`).
pub(crate) fn shaper_over<'m>(
    models: &'m Models,
    user: &UserContext,
    mut params: Vec<Param>,
) -> Shaper<'m> {
    params.push(Param::Text(user.lang.clone()));
    let lang_param = params.len();
    params.push(Param::Int(user.company_id));
    let company_param = params.len();
    models.shaper(params, lang_param, company_param)
}

/// The context of a read by `uid` of `model` in `lang` (an explicit code, else the user's).
fn reader_context(uid: i32, model: &str, lang: &Option<String>) -> UserContext {
    let mut user = context::load(uid, model, Operation::Read);
    if let Some(lang) = lang {
        user.lang = lang.clone();
    }
    user
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

/// What a read statement is made of: the visible rows, the parameters so far, each record's
/// (key, value) pairs and the order.
struct Built {
    from_where: String,
    params: Vec<Param>,
    pairs: Vec<(String, String)>,
    terms: Vec<select::OrderTerm>,
}

/// The rows of `model` matching `domain` that `user` sees, with the fields (a list, or a
/// `web_read` specification) and the order asked for.
fn build(
    user: &UserContext,
    models: &Models,
    model: &Rc<ModelMeta>,
    domain: &Domain,
    active_test: bool,
    (fields, specification): (Option<Vec<Option<String>>>, Option<Vec<Node>>),
    order: Option<&str>,
) -> Built {
    let q = visible_rows(user, models, model, domain, active_test);
    let shaper = shaper_over(models, user, q.params);
    let pairs =
        select::record_pairs(&shaper, model, fields, specification).unwrap_or_else(|e| refuse(e));
    let terms =
        select::order_terms(model, order, "t", shaper.lang_param).unwrap_or_else(|e| refuse(e));
    Built {
        from_where: q.from_where,
        params: shaper.into_params(),
        pairs,
        terms,
    }
}

/// The records as a JSON array (for `read`: the first record, or NULL).
pub fn search_read(req: Request) -> Option<RawJsonb> {
    crate::odoo::require_odoo("search_read", crate::data::TABLES);
    let user = reader_context(req.uid, req.model, &req.lang);
    let models = Models::new(&user, req.model);
    let model = models.get(req.model);
    if !req.single && searches_nothing(&user, req.model, &req.domain) {
        return Some(RawJsonb::from_json_text(b"[]".to_vec()));
    }
    user.require_access(req.model, Operation::Read);
    let page = req.page.map(|(limit, offset)| {
        select::page(user.limits, limit, offset).unwrap_or_else(|e| refuse(e))
    });
    let Built {
        from_where,
        mut params,
        pairs,
        terms,
    } = build(
        &user,
        &models,
        &model,
        &req.domain,
        req.active_test,
        (req.fields, req.specification),
        req.order,
    );
    let page = page.map(|p| {
        params.push(Param::Int(p.limit));
        params.push(Param::Int(p.offset));
        (params.len() - 1, params.len())
    });
    let shape = match (req.single, req.version) {
        (true, true) => Shape::Versioned,
        (true, false) => Shape::Single,
        (false, _) => Shape::List,
    };
    let sql = select::search_read_sql(pairs, &terms, &from_where, page, shape);
    // A translation read or compared in the user's language: a call run on the cache re-checks it.
    if select::reads_param(&sql, &params, &user.lang) {
        crate::data::cache::note_partner_facts();
    }
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
    let user = reader_context(req.uid, req.model, &req.lang);
    let models = Models::new(&user, req.model);
    let model = models.get(req.model);
    let domain = parse_domain(Some(req.domain_text));
    if searches_nothing(&user, req.model, &domain) {
        return RawJsonb::from_json_text(br#"{"records": [], "next": null}"#.to_vec());
    }
    user.require_access(req.model, Operation::Read);
    let limit = select::page(user.limits, req.limit, None)
        .unwrap_or_else(|e| refuse(e))
        .limit;
    let Built {
        from_where,
        mut params,
        pairs,
        terms,
    } = build(
        &user,
        &models,
        &model,
        &domain,
        true,
        (req.fields, None),
        req.order,
    );
    let signature = select::order_signature(&terms);
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
        let not_null = not_null_columns(model.table());
        let after = select::keyset_sql(&model, &terms, params.len(), &not_null)
            .unwrap_or_else(|e| refuse(e));
        keyset = format!(" AND {after}");
    }
    params.push(Param::Int(limit));
    let sql = select::page_sql(&pairs, &terms, &from_where, &keyset, params.len());
    let args = params::datums(&params);
    let (records, last) = Spi::connect(|c| {
        let plan = crate::spi::plan_cached(c, &sql, &params::types(&params), false);
        let t = spi(c.select(&*plan, Some(1), &args)).first();
        let last: Option<String> = spi(t.get::<String>(2));
        (crate::spi::jsonb_at(&t, 1), last)
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
    crate::spi::one_jsonb(
        "SELECT jsonb_build_object('records', $1::jsonb, 'next', $2::text)",
        &[PgBuiltInOids::JSONBOID, PgBuiltInOids::TEXTOID],
        vec![records.into(), next.as_deref().into()],
        "search_page",
    )
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
