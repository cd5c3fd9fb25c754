-- api_gateway.search_read: -D limit=<rows>, 5 fields, as the demo user (record rules apply)
SELECT api_gateway.search_read(5, 'res.partner', '[]', '{name,email,phone,city,is_company}', :limit::int);
