-- `describe_models(uid)`: the models the user may read, with their stored fields (type, label,
-- required, readonly, relation, selection values), for OpenAPI schemas and admin screens.
-- plpgsql so that CREATE EXTENSION works in a database without Odoo's tables.
CREATE FUNCTION api_gateway.describe_models(uid integer) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
        WITH RECURSIVE g(gid) AS (
            SELECT r.gid FROM public.res_groups_users_rel r WHERE r.uid = describe_models.uid
            UNION SELECT i.hid FROM public.res_groups_implied_rel i JOIN g ON i.gid = g.gid),
        readable AS (
            SELECT m.id, m.model, coalesce(m.name->>'en_US', m.model) AS label
              FROM public.ir_model m
             WHERE NOT coalesce(m.abstract, false)
               AND to_regclass('public.' || quote_ident(replace(m.model, '.', '_'))) IS NOT NULL
               AND (describe_models.uid = 1 OR EXISTS (
                    SELECT 1 FROM public.ir_model_access a
                     WHERE a.model_id = m.id AND a.active AND a.perm_read
                       AND (a.group_id IS NULL OR a.group_id IN (SELECT gid FROM g)))))
        SELECT coalesce(jsonb_object_agg(r.model, jsonb_build_object(
                   'name', r.label,
                   'fields', (SELECT coalesce(jsonb_object_agg(f.name, jsonb_build_object(
                                  'type', f.ttype,
                                  'string', coalesce(f.field_description->>'en_US', f.name),
                                  'required', coalesce(f.required, false),
                                  'readonly', coalesce(f.readonly, false),
                                  'relation', f.relation,
                                  'selection', (SELECT jsonb_agg(jsonb_build_array(s.value, coalesce(s.name->>'en_US', s.value))
                                                          ORDER BY s.sequence, s.id)
                                                  FROM public.ir_model_fields_selection s WHERE s.field_id = f.id))), '{}'::jsonb)
                                FROM public.ir_model_fields f
                               WHERE f.model = r.model AND coalesce(f.store, false) AND f.ttype <> 'binary'))),
               '{}'::jsonb)
          FROM readable r);
END;
$$;
