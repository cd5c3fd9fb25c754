-- The same answer as search_read.sql, written by hand (-D limit=<rows>): res_partner_rule for a
-- company-1 user, active records, the model's _order, Odoo's false for empty values.
SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'name', coalesce(to_jsonb(t.name), 'false'),
           'email', coalesce(to_jsonb(t.email), 'false'), 'phone', coalesce(to_jsonb(t.phone), 'false'),
           'city', coalesce(to_jsonb(t.city), 'false'), 'is_company', to_jsonb(coalesce(t.is_company, false)))
         ORDER BY t.complete_name, t.id DESC), '[]')
  FROM (SELECT * FROM res_partner p
         WHERE p.active
           AND (p.partner_share IS NOT TRUE OR p.company_id IS NULL
                OR p.company_id IN (WITH RECURSIVE up(id) AS (SELECT 1 UNION SELECT c.parent_id FROM res_company c JOIN up ON c.id = up.id WHERE c.parent_id IS NOT NULL) SELECT id FROM up))
         ORDER BY p.complete_name, p.id DESC LIMIT :limit) t;
