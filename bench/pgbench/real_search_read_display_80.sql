-- real_search_read_80.sql plus what a list view shows: display_name and two many2one fields
-- (their [id, display_name] pairs, res.partner's and res.country's display rules), -D uid=<user>.
SELECT api_gateway.search_read(:uid, 'res.partner', '[]', array['name','email','phone','city','is_company','display_name','parent_id','country_id'], 80);
