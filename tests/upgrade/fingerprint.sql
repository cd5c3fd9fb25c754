-- Everything that makes up the installed api_gateway schema, one line per fact, sorted, so two
-- installs can be diffed: fresh CREATE EXTENSION versus an older version plus ALTER EXTENSION UPDATE.
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'api_gateway'),
ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'api_gateway')
SELECT line FROM (
    SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid) AS line
      FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_function_result(p.oid)
           || ' vol=' || p.provolatile::text || ' strict=' || p.proisstrict || ' secdef=' || p.prosecdef
           || ' par=' || p.proparallel::text || ' cfg=' || coalesce(array_to_string(p.proconfig, ','), '')
           || ' acl=' || coalesce(p.proacl::text, 'default') || ' src=' || md5(p.prosrc) || ' bin=' || coalesce(p.probin, '')
           || ' args=' || pg_get_function_arguments(p.oid)
      FROM pg_proc p, ns WHERE p.pronamespace = ns.oid
    UNION ALL
    SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
           || ' acl=' || coalesce(c.relacl::text, 'default') || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
      FROM pg_class c, ns WHERE c.relnamespace = ns.oid
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')
           || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON c.relnamespace = ns.oid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || cl.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN ns ON cl.relnamespace = ns.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN ns ON c.relnamespace = ns.oid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON c.relnamespace = ns.oid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid))
      FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'type ' || t.typname || ' ' || t.typtype::text
      FROM pg_type t, ns WHERE t.typnamespace = ns.oid AND t.typtype IN ('c', 'e', 'd') AND t.typrelid = 0
    UNION ALL
    SELECT 'config_dump ' || x.cfg::regclass::text || ' ' || coalesce(x.cond, '')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond) WHERE e.extname = 'api_gateway'
    UNION ALL
    SELECT 'schema acl ' || coalesce(n.nspacl::text, 'default') FROM pg_namespace n, ns WHERE n.oid = ns.oid
) facts
ORDER BY line;
