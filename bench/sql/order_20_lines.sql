-- bench/data.sh (issue 18.1): a sale order of 20 lines for the nested-read rows, copied on the
-- real Odoo database from the demo's S00001 (the demo user's, uid 5) and its lines, every
-- column copied but the id, the name and the order. Prints the new order's id last.
DO $$
DECLARE
    order_cols text;
    line_cols text;
    new_id integer;
BEGIN
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO order_cols
      FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name = 'sale_order' AND column_name NOT IN ('id', 'name');
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO line_cols
      FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name = 'sale_order_line'
       AND column_name NOT IN ('id', 'order_id', 'sequence');
    EXECUTE format('INSERT INTO public.sale_order (name, %s) SELECT ''BENCH20'', %s FROM public.sale_order WHERE name = ''S00001'' RETURNING id',
                   order_cols, order_cols) INTO new_id;
    EXECUTE format('INSERT INTO public.sale_order_line (order_id, sequence, %s)
                    SELECT %s, g, %s FROM generate_series(1, 20) g
                      JOIN LATERAL (SELECT * FROM public.sale_order_line l
                                     WHERE l.order_id = (SELECT id FROM public.sale_order WHERE name = ''S00001'')
                                     ORDER BY l.id OFFSET (g - 1) %% 3 LIMIT 1) l ON true',
                   line_cols, new_id, line_cols);
END
$$;
SELECT id FROM public.sale_order WHERE name = 'BENCH20';
