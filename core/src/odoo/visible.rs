//! Which rows of a model a reader sees: the caller's domain (and the conditions the model's own
//! `_search` adds), the record rules, and for `ir.attachment` Odoo's `_check_access` on the
//! attached records. Which failure is whose: a domain that does not compile alone is the
//! caller's mistake (invalid); one that fails only with the rules is a rule the gateway cannot
//! enforce (refused, naming the rule).
use super::meta::{ModelMeta, valid_model_name};
use super::{Caller, ReadError, ReadFacts};
use crate::domain::{self, CompileOptions, Domain, DomainError, Param, Value};
use crate::rules::{self, Rule};
use std::collections::HashMap;

/// `FROM ... t WHERE ...` and its parameters, numbered from 1.
pub struct Query {
    pub from_where: String,
    pub params: Vec<Param>,
}

/// The reader's record rules on the model: their combined domain (None: no restriction) and
/// the rules themselves with what they read of the user (built only to name the one at fault).
pub struct Rules<'r> {
    pub domain: Option<&'r Domain>,
    pub rules: &'r [Rule],
    pub eval: &'r dyn Fn() -> HashMap<String, Value>,
}

/// What Odoo's `ir.attachment._check_access` reads besides the reader's rights: the models
/// attachments are attached to, and the id of the system administrators' group.
pub struct AttachmentFacts {
    pub res_models: Vec<String>,
    pub system_group: Option<i64>,
}

/// The rows of `model` matching `domain` that the reader may see. `attachment` is read only for
/// `ir.attachment` read by someone other than the superuser.
pub fn visible_rows(
    facts: &dyn ReadFacts,
    reader: &Caller,
    model: &ModelMeta,
    domain: &Domain,
    rules: &Rules,
    active_test: bool,
    attachment: impl FnOnce() -> AttachmentFacts,
) -> Result<Query, ReadError> {
    // Conditions the model's own `_search` adds (ir.attachment: res_field = False).
    let with_default;
    let domain = match crate::fields::search_default(&model.info.model, domain) {
        Some(extra) => {
            with_default = domain::and(vec![domain.clone(), extra]);
            &with_default
        }
        None => domain,
    };
    let opts = CompileOptions {
        lang: reader.lang,
        company_id: reader.company_id,
        active_test,
    };
    // The caller's domain alone first: its mistakes are bad input...
    if let Err(e) = domain::compile(domain, &model.info, facts, "t", 1, &opts) {
        if let Some(comodel) = facts.denied_comodel() {
            return Err(ReadError::Denied(format!(
                "user {} may not read records of model {comodel} (searched through the domain)",
                reader.uid
            )));
        }
        return Err(ReadError::invalid(format!("invalid domain: {e}")));
    }
    // ...so what fails once the rules are added is a rule the gateway cannot enforce.
    let compile_with = |rule: Option<&Domain>, d: &Domain| {
        domain::compile_search(d, rule, &model.info, facts, "t", 1, &opts)
    };
    let sql = compile_with(rules.domain, domain).map_err(|e| {
        let eval = (rules.eval)();
        let culprit = rules::culprit(&model.info.model, rules.rules, &eval, |d| {
            compile_with(Some(d), &Domain::True).err()
        });
        match culprit {
            Some(c) => ReadError::Unenforceable {
                model: model.info.model.clone(),
                rule_id: c.id,
                rule_name: c.name,
                why: c.why,
            },
            // no rule fails alone: the caller's domain and the rules together pass a limit
            None if matches!(e, DomainError::TooComplex(_)) => {
                ReadError::invalid(format!("invalid domain: {e}"))
            }
            None => ReadError::Unenforceable {
                model: model.info.model.clone(),
                rule_id: 0,
                rule_name: "record rules".into(),
                why: e.to_string(),
            },
        }
    })?;
    let (mut text, mut params) = (sql.text, sql.params);
    // ir.attachment: Odoo's own access check (the attached record's) on top of ACL and rules.
    if model.info.model == "ir.attachment" && !reader.superuser {
        let (cond, extra) = attachment_access(facts, reader, &attachment(), params.len() + 1);
        text = format!("({text}) AND {cond}");
        params.extend(extra);
    }
    Ok(Query {
        from_where: format!("FROM public.{} t WHERE {}", model.table_ident(), text),
        params,
    })
}

/// Who may read which attachment (Odoo's `ir.attachment._check_access`): a public one; one
/// without a record for system administrators and its creator; one attached to a record
/// (`res_model`, `res_id`) for whoever may read that record (access right and record rules of
/// `res_model`), and, for users who are not system administrators, only when its `res_field` is
/// a field of `res_model`. As a condition on the attachment row `t`, its parameters numbered
/// from `first_param`. Models the gateway cannot serve or whose rules it cannot enforce keep
/// their attachments hidden (fail closed).
pub fn attachment_access(
    facts: &dyn ReadFacts,
    reader: &Caller,
    known: &AttachmentFacts,
    first_param: usize,
) -> (String, Vec<Param>) {
    let is_system = known
        .system_group
        .is_some_and(|g| reader.groups.contains(&g));
    let opts = CompileOptions {
        lang: reader.lang,
        company_id: reader.company_id,
        active_test: false,
    };
    let mut params: Vec<Param> = vec![];
    let mut readable: Vec<String> = vec![];
    for (n, res_model) in known.res_models.iter().enumerate() {
        if !valid_model_name(res_model) {
            continue;
        }
        let Some(co) = facts.meta(res_model) else {
            continue;
        };
        let (allowed, rule) = facts.read_access(res_model);
        if !allowed {
            continue;
        }
        let a = format!("att{n}");
        let Ok(sql) = domain::compile_search(
            &Domain::True,
            rule.as_ref(),
            &co.info,
            facts,
            &a,
            first_param + params.len(),
            &opts,
        ) else {
            continue;
        };
        params.extend(sql.params);
        readable.push(format!(
            "(t.res_model = '{res_model}' AND EXISTS (SELECT 1 FROM public.{table} {a} \
               WHERE {a}.id = t.res_id AND ({cond})))",
            table = co.table_ident(),
            cond = sql.text
        ));
    }
    let record = if readable.is_empty() {
        "FALSE".to_string()
    } else {
        readable.join(" OR ")
    };
    let attached = "(t.res_model IS NOT NULL AND coalesce(t.res_id, 0) <> 0)";
    let own = if is_system {
        "TRUE".to_string()
    } else {
        format!(
            "(coalesce(t.res_id, 0) <> 0 OR t.create_uid = {uid}) \
             AND (t.res_field IS NULL OR EXISTS (SELECT 1 FROM public.ir_model_fields f \
                  WHERE f.model = t.res_model AND f.name = t.res_field))",
            uid = reader.uid
        )
    };
    (
        format!("(t.public IS TRUE OR (({own}) AND (NOT {attached} OR {record})))"),
        params,
    )
}
