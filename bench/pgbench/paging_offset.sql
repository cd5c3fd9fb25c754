-- The same page of 10 partners by offset (-D uid= -D offset=).
SELECT api_gateway.search_read(:uid, 'res.partner', '[("name", "=like", "Page %")]', '{name,email}', 10, :offset, 'id');
