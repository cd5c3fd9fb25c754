-- The same order read with its lines and each line's product in one request (issue 18.1).
SELECT api_gateway.search_read(:uid, 'sale.order', '[("id", "=", ' || :id || ')]', '{name,partner_id,date_order,state,amount_total,"order_line{product_id{name,default_code},name,product_uom_qty,price_unit,price_subtotal}"}');
