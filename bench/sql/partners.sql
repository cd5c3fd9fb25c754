-- 2,000 more partners for bench/data.sh and bench/http.sh, over both companies and none, a tenth
-- archived, some sharing partners: about 1,350 of them are visible to the demo user (uid 5), so
-- a page of 1,000 rows is a real page.
INSERT INTO res_partner (name, complete_name, email, phone, city, is_company, active, company_id, partner_share, type, commercial_partner_id)
SELECT 'Bench ' || g, 'Bench ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'b' || g || '@bench.example' END,
       '+1 555 ' || g, 'City ' || (g % 50), g % 5 = 0, g % 10 <> 0,
       CASE g % 3 WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE NULL END, g % 4 <> 0, 'contact', NULL
  FROM generate_series(1, 2000) g;
ANALYZE;
