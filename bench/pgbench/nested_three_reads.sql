-- What the nested read saves (-D uid= -D id=): the order, its lines and their products by three
-- plain reads, three round trips (the products' ids come from the lines' answer).
SELECT api_gateway.search_read(:uid, 'sale.order', '[("id", "=", ' || :id || ')]', '{name,partner_id,date_order,state,amount_total,order_line}') IS NOT NULL;
SELECT coalesce(string_agg(DISTINCT x -> 'product_id' ->> 0, ','), '0') AS pids FROM jsonb_array_elements(api_gateway.search_read(:uid, 'sale.order.line', '[("order_id", "=", ' || :id || ')]', '{product_id,name,product_uom_qty,price_unit,price_subtotal}')) x \gset
SELECT api_gateway.search_read(:uid, 'product.product', '[("id", "in", ' || array_to_json(string_to_array(:pids, ',')::int[]) || ')]', '{name,default_code}') IS NOT NULL;
