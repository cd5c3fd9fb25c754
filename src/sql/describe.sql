-- `describe_models(uid)`: the models the user may read, each with every field `fields_get`
-- describes to that user in en_US (stored or not; type, label, help, required, readonly,
-- relation, selection values, and `source`: read by the gateway in SQL, or through Odoo), for
-- OpenAPI schemas and admin screens. plpgsql so that CREATE EXTENSION works in a database
-- without Odoo's tables; VOLATILE because `fields_get` may refresh the per-backend caches.
CREATE FUNCTION api_gateway.describe_models(uid integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
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
               -- the names the gateway serves (lower-case dotted identifiers)
               AND m.model ~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$' AND length(m.model) <= 128
               AND to_regclass('public.' || quote_ident(replace(m.model, '.', '_'))) IS NOT NULL
               AND (describe_models.uid = 1 OR EXISTS (
                    SELECT 1 FROM public.ir_model_access a
                     WHERE a.model_id = m.id AND a.active AND a.perm_read
                       AND (a.group_id IS NULL OR a.group_id IN (SELECT gid FROM g)))))
        SELECT coalesce(jsonb_object_agg(r.model, jsonb_build_object(
                   'name', r.label,
                   'fields', api_gateway.fields_get(describe_models.uid, r.model, 'en_US'))),
               '{}'::jsonb)
          FROM readable r);
END;
$$;
