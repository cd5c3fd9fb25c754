//! What the front needs to serve a binary field as a file (`GET /api/v1/<model>/<id>/<field>`):
//! the checks Odoo makes before reading it (access right, field groups, record rules) and the
//! facts of the attachment that holds it (`ir_attachment` with `res_model`/`res_field`/`res_id`,
//! or the attachment itself for `ir.attachment.datas`/`raw`). The bytes live in Odoo's filestore:
//! the front reads them there or through Odoo (docs/http.md, "Binary fields").
use crate::data::Operation;
use crate::data::context;
use crate::data::read::{Models, visible_rows};
use crate::data::{params, read};
use crate::error::{raise, spi};
use pgrx::prelude::*;
use serde_json::{Value, json};

const OWN: &str = "SELECT name, mimetype, checksum, store_fname, file_size, type \
  FROM public.ir_attachment WHERE id = $1";

const OF_FIELD: &str = "SELECT name, mimetype, checksum, store_fname, file_size, type \
  FROM public.ir_attachment WHERE res_model = $1 AND res_field = $2 AND res_id = $3 \
  ORDER BY id DESC LIMIT 1";

/// `{"attachment": {...} | null}` for a record the user may read, None when it does not exist
/// or is not visible; 42501 without the right or the field's groups, 22023 for a field that is
/// unknown or not binary.
pub fn binary_file(uid: i32, model_name: &str, id: i32, field: &str) -> Option<Value> {
    crate::odoo::require_odoo("binary_file", crate::data::TABLES);
    let user = context::load(uid, model_name, Operation::Read);
    let models = Models::new(&user, model_name);
    let model = models.get(model_name);
    user.require_access(model_name, Operation::Read);
    let ttype = model.info.fields.get(field).map(|f| f.ttype.clone());
    match ttype.as_deref() {
        None => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "unknown field {model_name}.{}",
                field.chars().take(64).collect::<String>()
            ),
            None,
        ),
        Some("binary") => {}
        Some(other) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{model_name}.{field} is a {other} field, not a binary one"),
            Some("read it with GET /api/v1/<model>/<id>?fields=<field>"),
        ),
    }
    if !read::field_readable(&user, &model, field) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "user {uid} may not read field {model_name}.{field}: it is restricted to groups the user is not in"
            ),
            None,
        )
    }
    let q = visible_rows(&user, &models, &model, &read::id_domain(id), false);
    let sql = format!("SELECT EXISTS (SELECT 1 {})", q.from_where);
    let args = params::datums(&q.params);
    let visible = Spi::connect(|c| {
        spi(c
            .select(sql.as_str(), Some(1), &args)
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false)
    });
    if !visible {
        return None;
    }
    let row = Spi::connect(|c| {
        // A database without Odoo's attachments (a bare fixture): no facts, Odoo decides.
        let has_table = spi(c
            .select(
                "SELECT to_regclass('public.ir_attachment') IS NOT NULL",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false);
        if !has_table {
            return None;
        }
        let t = if model_name == "ir.attachment" {
            spi(c.select(OWN, Some(1), &[id.into()]))
        } else {
            spi(c.select(
                OF_FIELD,
                Some(1),
                &[model_name.into(), field.into(), id.into()],
            ))
        };
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let text = |i: usize| spi(r.get::<String>(i));
        Some(json!({
            "name": text(1),
            "mimetype": text(2),
            "checksum": text(3),
            "store_fname": text(4),
            "file_size": spi(r.get::<i64>(5)),
            "type": text(6),
        }))
    });
    Some(json!({ "attachment": row }))
}
