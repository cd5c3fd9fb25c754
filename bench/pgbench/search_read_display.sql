-- search_read.sql plus what a list view shows (-D limit=<rows>): display_name and two many2one
-- fields (their [id, display_name] pairs), as the demo user (record rules apply).
SELECT api_gateway.search_read(5, 'res.partner', '[]', '{name,email,phone,city,is_company,display_name,parent_id,country_id}', :limit::int);
