-- The floor of nested_flat.sql: the order with its lines' ids by hand-written SQL (-D id=); see
-- nested_handwritten.sql.
SELECT jsonb_build_object('id', o.id, 'name', o.name, 'partner_id', jsonb_build_array(p.id, p.name),
         'date_order', o.date_order, 'state', o.state, 'amount_total', o.amount_total,
         'order_line', (SELECT jsonb_agg(l.id ORDER BY l.sequence, l.id)
                          FROM sale_order_line l WHERE l.order_id = o.id))
  FROM sale_order o JOIN res_partner p ON p.id = o.partner_id
 WHERE o.id = :id;
