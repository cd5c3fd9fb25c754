-- real_handwritten.sql for a portal user: also the portal rule, the records under the user's
-- commercial partner (-D commercial=<id>; res_partner has no parent_path: a recursive query).
SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'name', coalesce(to_jsonb(t.name), 'false'),
           'email', coalesce(to_jsonb(t.email), 'false')) ORDER BY t.complete_name, t.id DESC), '[]')
  FROM (SELECT p.id, p.name, p.email, p.complete_name FROM res_partner p
         WHERE (p.is_company OR NOT :company_only::bool) AND p.active
           AND (p.partner_share IS NOT TRUE OR p.company_id = ANY (:companies::int4[]) OR p.company_id IS NULL)
           AND p.id IN (WITH RECURSIVE h(id) AS (SELECT :commercial::int4
                                                 UNION SELECT x.id FROM res_partner x JOIN h ON x.parent_id = h.id)
                        SELECT id FROM h)
         ORDER BY p.complete_name, p.id DESC LIMIT :limit) t;
