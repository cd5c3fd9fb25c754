-- The floor of nested_read.sql: the same order, lines and products as one JSON object by
-- hand-written SQL (-D id=), with none of the gateway's work (no access rights, no record rules,
-- no display names, no translations beyond en_US). Compared with nested_flat_handwritten.sql it
-- shows what reading 20 lines and 20 products costs in itself.
SELECT jsonb_build_object('id', o.id, 'name', o.name, 'partner_id', jsonb_build_array(p.id, p.name),
         'date_order', o.date_order, 'state', o.state, 'amount_total', o.amount_total,
         'order_line', (SELECT jsonb_agg(jsonb_build_object('id', l.id, 'name', l.name,
                                 'product_uom_qty', l.product_uom_qty, 'price_unit', l.price_unit,
                                 'price_subtotal', l.price_subtotal,
                                 'product_id', jsonb_build_object('id', pp.id, 'name', pt.name ->> 'en_US',
                                                                  'default_code', pp.default_code))
                                 ORDER BY l.sequence, l.id)
                          FROM sale_order_line l
                          LEFT JOIN product_product pp ON pp.id = l.product_id
                          LEFT JOIN product_template pt ON pt.id = pp.product_tmpl_id
                         WHERE l.order_id = o.id))
  FROM sale_order o JOIN res_partner p ON p.id = o.partner_id
 WHERE o.id = :id;
