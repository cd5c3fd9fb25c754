-- The first page of paging_cursor.sql (no cursor yet; -D uid=).
SELECT api_gateway.search_page(:uid, 'res.partner', '[("name", "=like", "Page %")]', '{name,email}', 10, 'id', NULL);
