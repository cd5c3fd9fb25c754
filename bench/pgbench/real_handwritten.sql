-- The same answer as real_search_read.sql written by hand for an internal user (-D limit=<rows>,
-- -D companies=<the user's companies and their parents>, -D company_only=true|false for the
-- domain [("is_company","=",True)] or []): res_partner_rule, active records, the model's _order
-- (complete_name, id DESC), Odoo's false for empty values.
SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'name', coalesce(to_jsonb(t.name), 'false'),
           'email', coalesce(to_jsonb(t.email), 'false')) ORDER BY t.complete_name, t.id DESC), '[]')
  FROM (SELECT p.id, p.name, p.email, p.complete_name FROM res_partner p
         WHERE (p.is_company OR NOT :company_only::bool) AND p.active
           AND (p.partner_share IS NOT TRUE OR p.company_id = ANY (:companies::int4[]) OR p.company_id IS NULL)
         ORDER BY p.complete_name, p.id DESC LIMIT :limit) t;
