//! Who may read which `ir.attachment` (Odoo's `ir.attachment._check_access`, applied by its
//! `_search`): a public attachment; one without a record for system administrators and its
//! creator; one attached to a record (`res_model`, `res_id`) for whoever may read that record
//! (access right and record rules of `res_model`), and, for users who are not system
//! administrators, only when its `res_field` is a field of `res_model`. The user's access right
//! and rules on `ir.attachment` itself still apply.
use crate::data::Operation;
use crate::data::context::{self, UserContext};
use crate::data::meta::valid_model_name;
use crate::data::read::Models;
use crate::error::spi;
use api_gateway_core::domain::{self, CompileOptions, Domain, Param};
use pgrx::prelude::*;

const MODELS: &str = "SELECT coalesce(array_agg(DISTINCT res_model::text), '{}') FROM public.ir_attachment \
  WHERE res_model IS NOT NULL AND coalesce(res_id, 0) <> 0";

const SYSTEM_GROUP: &str = "SELECT res_id::int8 FROM public.ir_model_data \
  WHERE module = 'base' AND name = 'group_system' AND model = 'res.groups'";

/// The condition on the attachment row `t`, with its parameters numbered from `first_param`.
pub fn access(user: &UserContext, models: &Models, first_param: usize) -> (String, Vec<Param>) {
    let (res_models, system_group) = Spi::connect(|c| {
        let m = spi(c
            .select(MODELS, Some(1), &[])
            .and_then(|t| t.first().get::<Vec<String>>(1)))
        .unwrap_or_default();
        let g = spi(c.select(SYSTEM_GROUP, Some(1), &[]).and_then(|t| {
            if t.is_empty() {
                Ok(None)
            } else {
                t.first().get::<i64>(1)
            }
        }));
        (m, g)
    });
    let is_system = system_group.is_some_and(|g| user.groups.contains(&g));
    let opts = CompileOptions {
        lang: &user.lang,
        company_id: user.company_id,
        active_test: false,
    };
    let mut params: Vec<Param> = vec![];
    let mut readable: Vec<String> = vec![];
    for (n, res_model) in res_models.iter().enumerate() {
        if !valid_model_name(res_model) {
            continue;
        }
        let Some(co) = models.try_get(res_model) else {
            continue; // not servable: its attachments stay hidden (fail closed)
        };
        let ctx = context::load(user.uid, res_model, Operation::Read);
        if !ctx.allowed {
            continue;
        }
        let rule = ctx.rule_domain(res_model);
        let a = format!("att{n}");
        let Ok(sql) = domain::compile_search(
            &Domain::True,
            rule.as_ref(),
            &co.info,
            models,
            &a,
            first_param + params.len(),
            &opts,
        ) else {
            continue; // a rule the gateway cannot enforce: hidden
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
            uid = user.uid
        )
    };
    (
        format!("(t.public IS TRUE OR (({own}) AND (NOT {attached} OR {record})))"),
        params,
    )
}
