-- api_gateway.search_read: 80 partners, 5 fields, as the demo user (record rules apply)
SELECT api_gateway.search_read(5, 'res.partner', '[]', '{name,email,phone,city,is_company}', 80);
