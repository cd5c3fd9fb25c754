//! What Odoo's `ir.attachment._check_access` reads from the database besides the reader's
//! rights; the rule itself is `api_gateway_core::odoo::visible::attachment_access`.
use crate::error::spi;
use api_gateway_core::odoo::visible::AttachmentFacts;
use pgrx::prelude::*;

const MODELS: &str = "SELECT coalesce(array_agg(DISTINCT res_model::text), '{}') FROM public.ir_attachment \
  WHERE res_model IS NOT NULL AND coalesce(res_id, 0) <> 0";

const SYSTEM_GROUP: &str = "SELECT res_id::int8 FROM public.ir_model_data \
  WHERE module = 'base' AND name = 'group_system' AND model = 'res.groups'";

/// The models attachments are attached to, and the system administrators' group.
pub fn facts() -> AttachmentFacts {
    Spi::connect(|c| {
        let res_models = spi(c
            .select(MODELS, Some(1), &[])
            .and_then(|t| t.first().get::<Vec<String>>(1)))
        .unwrap_or_default();
        let system_group = spi(c.select(SYSTEM_GROUP, Some(1), &[]).and_then(|t| {
            if t.is_empty() {
                Ok(None)
            } else {
                t.first().get::<i64>(1)
            }
        }));
        AttachmentFacts {
            res_models,
            system_group,
        }
    })
}
