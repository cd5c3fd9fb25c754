//! Who is asking: the Odoo user with groups (implied closure) and companies, the access rights
//! (`ir.model.access`) and record rules (`ir.rule`) that apply: from the per-backend cache
//! (`cache`, checked by one probe per statement), or in one query per call where it is off.
use crate::data::{Operation, cache};
use crate::error::{raise, spi};
use api_gateway_core::domain::{Domain, Value};
use api_gateway_core::rules;
use pgrx::prelude::*;
use std::collections::HashMap;

pub const SUPERUSER_ID: i32 = 1;

pub use api_gateway_core::rules::INHERITS;

const CONTEXT: &str = "WITH RECURSIVE g(gid) AS ( \
       SELECT r.gid FROM public.res_groups_users_rel r WHERE r.uid = $1 \
       UNION SELECT i.hid FROM public.res_groups_implied_rel i JOIN g ON i.gid = g.gid) \
SELECT u.active, u.company_id, u.partner_id, p.commercial_partner_id, p.lang, \
       ARRAY(SELECT gid FROM g ORDER BY gid), \
       ARRAY(SELECT r.cid FROM public.res_company_users_rel r JOIN public.res_company c ON c.id = r.cid \
              WHERE r.user_id = $1 AND coalesce(c.active, true) ORDER BY r.cid), \
       (SELECT coalesce(bool_or(CASE $3 WHEN 'read' THEN a.perm_read WHEN 'write' THEN a.perm_write \
                                 WHEN 'create' THEN a.perm_create ELSE a.perm_unlink END), false) \
          FROM public.ir_model_access a JOIN public.ir_model m ON m.id = a.model_id \
         WHERE m.model = $2[1] AND a.active AND (a.group_id IS NULL OR a.group_id IN (SELECT gid FROM g))), \
       (SELECT json_agg(json_build_array(m.model, r.id, r.name, coalesce(r.domain_force, ''), \
                        NOT EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id)) ORDER BY r.id) \
          FROM public.ir_rule r JOIN public.ir_model m ON m.id = r.model_id \
         WHERE m.model = ANY($2) AND r.active \
           AND CASE $3 WHEN 'read' THEN r.perm_read WHEN 'write' THEN r.perm_write \
                       WHEN 'create' THEN r.perm_create ELSE r.perm_unlink END \
           AND (NOT EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id) \
                OR EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id AND x.group_id IN (SELECT gid FROM g)))), \
       fp.n, fp.s, st.default_limit, st.max_limit \
  FROM public.res_users u \
  CROSS JOIN (SELECT count(*) AS n, coalesce(sum(xmin::text::bigint), 0)::bigint AS s \
                FROM public.ir_model_fields WHERE model = $2[1]) fp \
  CROSS JOIN api_gateway.settings st LEFT JOIN public.res_partner p ON p.id = u.partner_id WHERE u.id = $1";

/// The environment of one call: `env.user`, `env.companies`, `env.company`, language.
pub struct UserContext {
    pub uid: i32,
    pub superuser: bool,
    pub company_id: i64,
    pub company_ids: Vec<i64>,
    pub partner_id: Option<i64>,
    pub commercial_partner_id: Option<i64>,
    pub lang: String,
    pub groups: Vec<i64>,
    /// ACL for the operation asked.
    pub allowed: bool,
    /// (model, rule id, rule name, domain_force, global) for the model and its `_inherits` parents.
    pub rules: Vec<rules::Rule>,
    /// Fingerprint of the model's ir_model_fields rows, read in the same query.
    pub fingerprint: (i64, i64),
    /// settings.default_limit and max_limit.
    pub limits: (i32, i32),
}

/// Load the user's context and what applies to `model` for `op`. An unknown or archived user
/// (other than the superuser) is refused with 42501.
pub fn load(uid: i32, model: &str, op: Operation) -> UserContext {
    let mut models = vec![model.to_string()];
    models.extend(
        INHERITS
            .iter()
            .filter(|(m, _, _)| *m == model)
            .map(|(_, p, _)| p.to_string()),
    );
    match cache::load(uid, &models, op) {
        Some(loaded) => from_cache(uid, loaded),
        None => load_uncached(uid, models, op),
    }
}

/// The context from the per-backend cache; the metadata fingerprint is the cache generation.
fn from_cache(uid: i32, loaded: cache::Loaded) -> UserContext {
    let Some(facts) = loaded.facts else {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("Odoo user {uid} does not exist"),
            None,
        )
    };
    build(
        uid,
        Row {
            active: facts.active,
            company_id: facts.company_id,
            partner_id: facts.partner_id,
            commercial: facts.commercial_partner_id,
            lang: facts.lang,
            groups: loaded.user.groups.iter().map(|g| i64::from(*g)).collect(),
            companies: loaded
                .user
                .companies
                .iter()
                .map(|c| i64::from(*c))
                .collect(),
            allowed: loaded.access.allowed,
            rules: loaded.access.rules.clone(),
            // Never a real fingerprint: those have a sum >= 0.
            fingerprint: (loaded.generation as i64, -1),
            limits: facts.limits,
        },
    )
}

/// What one load found, before the context is derived from it.
struct Row {
    active: bool,
    company_id: i32,
    partner_id: Option<i32>,
    commercial: Option<i32>,
    lang: Option<String>,
    groups: Vec<i64>,
    companies: Vec<i64>,
    allowed: bool,
    rules: Vec<cache::Rule>,
    fingerprint: (i64, i64),
    limits: (i32, i32),
}

/// (model, rule id, rule name, domain_force, global) from the rules' JSON array.
pub fn parse_rules(rules: Option<pgrx::Json>) -> Vec<cache::Rule> {
    rules
        .and_then(|j| j.0.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[1].as_i64().unwrap_or(0) as i32,
                r[2].as_str().unwrap_or_default().to_string(),
                r[3].as_str().unwrap_or_default().to_string(),
                r[4].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Everything read in one query (a backend that does not cache).
fn load_uncached(uid: i32, models: Vec<String>, op: Operation) -> UserContext {
    let row = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            CONTEXT,
            &[
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::TEXTARRAYOID,
                PgBuiltInOids::TEXTOID,
            ],
            false,
        );
        let t = spi(c.select(
            plan,
            Some(1),
            &[uid.into(), models.clone().into(), op.as_str().into()],
        ));
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        Some((
            spi(r.get::<bool>(1)).unwrap_or(false),
            spi(r.get::<i32>(2)).unwrap_or(0),
            spi(r.get::<i32>(3)),
            spi(r.get::<i32>(4)),
            spi(r.get::<String>(5)),
            spi(r.get::<Vec<i32>>(6)).unwrap_or_default(),
            spi(r.get::<Vec<i32>>(7)).unwrap_or_default(),
            spi(r.get::<bool>(8)).unwrap_or(false),
            spi(r.get::<pgrx::Json>(9)),
            (
                spi(r.get::<i64>(10)).unwrap_or(0),
                spi(r.get::<i64>(11)).unwrap_or(0),
            ),
            (
                spi(r.get::<i32>(12)).unwrap_or(80),
                spi(r.get::<i32>(13)).unwrap_or(1000),
            ),
        ))
    });
    let Some((
        active,
        company_id,
        partner_id,
        commercial,
        lang,
        groups,
        companies,
        allowed,
        rules,
        fingerprint,
        limits,
    )) = row
    else {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("Odoo user {uid} does not exist"),
            None,
        )
    };
    build(
        uid,
        Row {
            active,
            company_id,
            partner_id,
            commercial,
            lang,
            groups: groups.into_iter().map(i64::from).collect(),
            companies: companies.into_iter().map(i64::from).collect(),
            allowed,
            rules: parse_rules(rules),
            fingerprint,
            limits,
        },
    )
}

fn build(uid: i32, row: Row) -> UserContext {
    let Row {
        active,
        company_id,
        partner_id,
        commercial,
        lang,
        groups,
        companies,
        allowed,
        rules,
        fingerprint,
        limits,
    } = row;
    let superuser = uid == SUPERUSER_ID;
    if !active && !superuser {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("Odoo user {uid} is archived"),
            None,
        );
    }
    let company_ids: Vec<i64> = companies;
    // env.company: the user's company when it is among the allowed ones, else the first allowed.
    let company = if company_ids.contains(&i64::from(company_id)) || company_ids.is_empty() {
        i64::from(company_id)
    } else {
        company_ids[0]
    };
    UserContext {
        uid,
        superuser,
        company_id: company,
        company_ids,
        partner_id: partner_id.map(i64::from),
        commercial_partner_id: commercial.or(partner_id).map(i64::from),
        lang: lang
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "en_US".into()),
        groups,
        allowed: allowed || superuser,
        rules,
        fingerprint,
        limits,
    }
}

impl UserContext {
    /// The caller as `api_gateway_core::odoo` sees it.
    pub fn caller(&self) -> api_gateway_core::odoo::Caller<'_> {
        api_gateway_core::odoo::Caller {
            uid: self.uid,
            superuser: self.superuser,
            lang: &self.lang,
            company_id: self.company_id,
            groups: &self.groups,
        }
    }

    /// Refuse with 42501 when the ACL does not grant `op` on `model` (Odoo's AccessError).
    pub fn require_access(&self, model: &str, op: Operation) {
        if !self.allowed {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "user {} may not {} records of model {model} (no access right grants it)",
                    self.uid,
                    op.as_str()
                ),
                None,
            );
        }
    }

    pub fn eval_context(&self) -> HashMap<String, Value> {
        rules::eval_context(&rules::RuleUser {
            uid: self.uid,
            partner_id: self.partner_id,
            commercial_partner_id: self.commercial_partner_id,
            company_id: self.company_id,
            company_ids: &self.company_ids,
            groups: &self.groups,
        })
    }

    /// The record-rule domain for the loaded operation (Odoo's `_compute_domain`): global rules
    /// ANDed, group rules ORed and ANDed with them; rules of `_inherits` parents applied through
    /// the delegation field. None = no restriction. A rule that cannot be evaluated makes the
    /// operation fail closed (42501 naming the rule).
    pub fn rule_domain(&self, model: &str) -> Option<Domain> {
        if self.superuser || self.rules.is_empty() {
            return None;
        }
        // A rule reading the commercial partner (a fact of res_partner, not res_users): a call
        // run on the cache re-checks it.
        if self
            .rules
            .iter()
            .any(|r| r.3.contains("commercial_partner"))
        {
            cache::note_partner_facts();
        }
        // Loaded through the cache (its fingerprint is a generation, never a real one): the
        // rules' texts and the user's groups and companies are fixed for this uid in this
        // generation; what else the rules read (env.company, the partner) is part of the key.
        if self.fingerprint.1 != -1 {
            return self.compute_rule_domain(model);
        }
        let key = (
            self.uid,
            model.to_string(),
            self.rules.iter().map(|r| r.1).collect(),
            self.company_id,
            self.partner_id,
            self.commercial_partner_id,
        );
        cache::rule_domain(&key, || self.compute_rule_domain(model))
    }

    fn compute_rule_domain(&self, model: &str) -> Option<Domain> {
        // Company hierarchies are resolved only where the context came through the cache.
        let resolve = self.fingerprint.1 == -1;
        let combined = rules::combine(model, &self.rules, &self.eval_context(), |m, d| {
            if resolve {
                // `res_company` changes drop the cached context, so the ancestors read here hold
                // as long as the rule domain does.
                let field = |name: &str| {
                    let meta = crate::data::meta::try_model(m).ok()?;
                    meta.info.fields.get(name).cloned()
                };
                rules::resolve_company_parents(d, &field, &cache::company_ancestors)
            } else {
                d
            }
        });
        Some(combined.unwrap_or_else(|e| fail_closed(model, e.id, &e.name, &e.why)))
    }
}

pub fn fail_closed(model: &str, rule_id: i32, rule_name: &str, why: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!(
            "record rule {rule_id} \"{rule_name}\" on {model} cannot be enforced by the gateway ({why}); access refused"
        ),
        Some(
            "the rule uses a name or a field the gateway cannot evaluate in SQL; serve this model through Odoo",
        ),
    )
}
