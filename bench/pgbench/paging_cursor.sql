-- A page of 10 partners by cursor (-D uid= -D after=<cursor of the page before>).
SELECT api_gateway.search_page(:uid, 'res.partner', '[("name", "=like", "Page %")]', '{name,email}', 10, 'id', :after);
