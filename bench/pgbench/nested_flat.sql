-- The flat read of one sale order (-D uid= -D id=): its own fields and its lines' ids.
SELECT api_gateway.search_read(:uid, 'sale.order', '[("id", "=", ' || :id || ')]', '{name,partner_id,date_order,state,amount_total,order_line}');
