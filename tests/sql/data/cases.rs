//! The differential table: for each domain, the oracle that Odoo 19 prescribes, as a SQL
//! condition over the fixture tables written by hand from `shared/reference/odoo19.md` §3-§5 and
//! Odoo's own `odoo/orm/domains.py`, `fields.py`, `fields_relational.py` and `models.py`.
//!
//! The main table is aliased `t`. The harness ANDs the user's record rules for the model and the
//! active test (unless the case mentions `active`). Placeholders:
//! * in the domain and the oracle: `{P_PARENT}` (the partner with the most children),
//!   `{P_LEAF}` (a grandchild when there is one), `{P_ARCH_CHILD}` (an archived child),
//!   `{TAG1}` (the most used partner tag), `{TAG2}` (a tag with children), `{TAG_ARCH}` (an
//!   archived tag, 0 if none), `{C2}` (the highest company id);
//! * in the oracle only: `{lang}` (the user's language as a SQL literal), `{prule:X}`,
//!   `{trule:X}`, `{crule:X}` (the user's read rules of res.partner, product.template and
//!   res.company on alias X, for sub-searches that apply the comodel's rules),
//!   `{child_of:N}` / `{parent_of:N}` (a sub-select of the res.partner hierarchy walked through
//!   `parent_id` from N, archived records included, as Odoo does with sudo and
//!   `active_test=False`).

pub struct Case {
    pub model: &'static str,
    pub domain: &'static str,
    pub oracle: &'static str,
    /// The domain mentions `active` itself: no implicit active test.
    pub mentions_active: bool,
    /// Comodels searched with access checks (`_search` raises AccessError without a read ACL).
    pub needs: &'static [&'static str],
    pub why: &'static str,
}

impl Case {
    fn active(mut self) -> Self {
        self.mentions_active = true;
        self
    }
    fn needs(mut self, models: &'static [&'static str]) -> Self {
        self.needs = models;
        self
    }
}

fn partner(domain: &'static str, oracle: &'static str, why: &'static str) -> Case {
    Case {
        model: "res.partner",
        domain,
        oracle,
        mentions_active: false,
        needs: &[],
        why,
    }
}

fn product(domain: &'static str, oracle: &'static str, why: &'static str) -> Case {
    Case {
        model: "product.template",
        domain,
        oracle,
        mentions_active: false,
        needs: &[],
        why,
    }
}

const TAGS: &[&str] = &["res.partner.category"];
const COMPANIES: &[&str] = &["res.company"];

pub fn partner_cases() -> Vec<Case> {
    vec![
        // --- structure: implicit AND, & | !, both syntaxes ---
        partner("[]", "TRUE", "empty domain: only the rules and the active test"),
        partner(
            "[('is_company','=',True)]",
            "t.is_company IS TRUE",
            "boolean = True is IN (true): NULL does not match",
        ),
        partner(
            r#"[["is_company","=",false]]"#,
            "t.is_company IS NOT TRUE",
            "JSON; boolean = False matches false and NULL (§5.3)",
        ),
        partner(
            "[('is_company','=',True), '|', ('name','ilike','acme'), ('email','=',False)]",
            "t.is_company IS TRUE AND (t.name ILIKE '%acme%' OR t.email IS NULL OR t.email = '')",
            "implicit AND with a prefix OR; email = False is NULL or ''",
        ),
        partner(
            r#"["|", ["city","=","Chicago"], ["city","ilike","er"]]"#,
            "(t.city = 'Chicago' OR t.city ILIKE '%er%')",
            "JSON prefix OR",
        ),
        partner(
            r#"[["name","ilike","a"],["email","ilike","@"]]"#,
            "t.name ILIKE '%a%' AND t.email ILIKE '%@%'",
            "JSON implicit AND",
        ),
        partner(
            "['!', ('name','ilike','a')]",
            "(t.name IS NULL OR t.name NOT ILIKE '%a%')",
            "! on a plain field inverts the operator: not ilike also matches NULL names",
        ),
        partner(
            "['!', '|', ('is_company','=',True), ('parent_id','=',False)]",
            "t.is_company IS NOT TRUE AND t.parent_id IS NOT NULL",
            "! pushed through | (De Morgan)",
        ),
        partner(
            "['&', '!', ('email','=',False), ('color','>',0)]",
            "t.email IS NOT NULL AND t.email <> '' AND t.color > 0",
            "explicit & with a negated falsy test",
        ),
        partner(
            "['|', '&', ('is_company','=',True), ('city','ilike','a'), '!', ('email','ilike','@')]",
            "((t.is_company IS TRUE AND t.city ILIKE '%a%') OR t.email IS NULL OR t.email NOT ILIKE '%@%')",
            "nested prefix operators",
        ),
        partner(
            "[(1,'=',1)]",
            "TRUE",
            "TRUE leaf",
        ),
        partner(
            "[(0,'=',1)]",
            "FALSE",
            "FALSE leaf",
        ),
        partner(
            r#"[("parent_id", "=", None), ("is_company", "in", (True,))]"#,
            "t.parent_id IS NULL AND t.is_company IS TRUE",
            "double quotes, None is False, tuple values",
        ),
        partner(
            "[('name','ILIKE','a')]",
            "t.name ILIKE '%a%'",
            "upper-case operator: deprecated in 19 but lowered and accepted",
        ),
        // --- False / NULL / '' (§5.3) ---
        partner(
            "[('email','=',False)]",
            "(t.email IS NULL OR t.email = '')",
            "char = False matches NULL and the falsy ''",
        ),
        partner(
            r#"[["email","!=",false]]"#,
            "(t.email IS NOT NULL AND t.email <> '')",
            "char != False excludes NULL and ''",
        ),
        partner(
            "[('email','=','')]",
            "(t.email IS NULL OR t.email = '')",
            "'' is the falsy value of char: also matches NULL",
        ),
        partner(
            "[('email','=',[])]",
            "(t.email IS NULL OR t.email = '')",
            "= [] is rewritten to in {False}",
        ),
        partner(
            "[('name','=',False)]",
            "(t.name IS NULL OR t.name = '')",
            "unnamed partners (addresses)",
        ),
        partner(
            "[('color','=',0)]",
            "(t.color = 0 OR t.color IS NULL)",
            "integer falsy 0 also matches NULL",
        ),
        partner(
            "[('color','<',5)]",
            "(t.color < 5 OR t.color IS NULL)",
            "inequality includes NULL when the falsy value 0 satisfies it",
        ),
        partner(
            "[('color','>',0)]",
            "t.color > 0",
            "0 > 0 is false: no NULL",
        ),
        partner(
            "[('color','>=',0), ('color','<=',4)]",
            "(t.color >= 0 OR t.color IS NULL) AND (t.color <= 4 OR t.color IS NULL)",
            ">= and <= both hold for 0: NULL included",
        ),
        partner(
            "[('color','!=',0)]",
            "t.color <> 0",
            "not in {falsy}: NULL excluded",
        ),
        partner(
            "['!', ('color','<',5)]",
            "t.color >= 5",
            "negated inequality becomes >= 5 (falsy 0 does not satisfy it)",
        ),
        partner(
            "[('partner_share','=',False)]",
            "t.partner_share IS NOT TRUE",
            "internal users' partners",
        ),
        // --- in / not in / =? ---
        partner(
            "[('id','in',[{P_PARENT},{P_LEAF},999999])]",
            "t.id IN ({P_PARENT},{P_LEAF},999999)",
            "id in a list (a missing id is simply absent)",
        ),
        partner(
            "[('id','not in',[{P_PARENT}]), ('parent_id','!=',{P_PARENT})]",
            "t.id <> {P_PARENT} AND (t.parent_id IS NULL OR t.parent_id <> {P_PARENT})",
            "many2one != id also matches NULL",
        ),
        partner(
            "[('name','not in',['Sam Solo','Acme Corporation','Wood Corner'])]",
            "(t.name IS NULL OR t.name NOT IN ('Sam Solo','Acme Corporation','Wood Corner'))",
            "not in includes NULL",
        ),
        partner("[('id','in',[])]", "FALSE", "in [] is FALSE"),
        partner(
            "[('ref','=?',False), ('is_company','=',True)]",
            "t.is_company IS TRUE",
            "=? with a falsy value is TRUE",
        ),
        partner(
            "[('type','=?','invoice')]",
            "t.type = 'invoice'",
            "=? with a value is =",
        ),
        partner(
            "[('type','in',['invoice','delivery'])]",
            "t.type IN ('invoice','delivery')",
            "selection in",
        ),
        partner(
            "[('lang','=','fr_FR')]",
            "t.lang = 'fr_FR'",
            "plain =",
        ),
        partner(
            "[('company_id','in',[1,False])]",
            "(t.company_id = 1 OR t.company_id IS NULL)",
            "in {v, False} adds IS NULL",
        ),
        partner(
            "[('company_id','not in',[1])]",
            "(t.company_id IS NULL OR t.company_id <> 1)",
            "not in (v) adds IS NULL",
        ),
        partner(
            "[('commercial_partner_id','=',{P_PARENT})]",
            "t.commercial_partner_id = {P_PARENT}",
            "many2one = id: plain column test, no rule on the comodel",
        ),
        // --- like family ---
        partner(
            "[('email','like','example')]",
            "t.email LIKE '%example%'",
            "like wraps with % and is case-sensitive",
        ),
        partner(
            "[('email','not like','example.com')]",
            "(t.email IS NULL OR t.email NOT LIKE '%example.com%')",
            "not like includes NULL",
        ),
        partner(
            "[('email','ilike','CORP')]",
            "t.email ILIKE '%CORP%'",
            "ilike is case-insensitive (no unaccent in these databases)",
        ),
        partner(
            "[('name','not ilike','e')]",
            "(t.name IS NULL OR t.name NOT ILIKE '%e%')",
            "not ilike includes NULL",
        ),
        partner(
            "[('name','=like','%a_')]",
            "t.name LIKE '%a_'",
            "=like uses the pattern as given",
        ),
        partner(
            "[('name','=ilike','j%')]",
            "t.name ILIKE 'j%'",
            "=ilike uses the pattern as given, case-insensitive",
        ),
        partner(
            "[('name','ilike','')]",
            "TRUE",
            "ilike '' is optimised to TRUE (NULL names too)",
        ),
        partner(
            "[('name','=like','')]",
            "(t.name IS NULL OR t.name = '')",
            "=like '' is optimised to = False",
        ),
        partner(
            "[('name','ilike','ë')]",
            "t.name ILIKE '%ë%'",
            "non-ASCII pattern",
        ),
        // --- child_of / parent_of ---
        partner(
            "[('id','child_of',{P_PARENT})]",
            "t.id IN {child_of:{P_PARENT}}",
            "res.partner has no parent_store: walk parent_id with sudo, archived included",
        ),
        partner(
            r#"[["parent_id","child_of",[{P_PARENT}]]]"#,
            "t.id IN {child_of:{P_PARENT}}",
            "parent_id child_of on the same model is the id hierarchy through parent_id",
        ),
        partner(
            "[('id','parent_of',{P_LEAF})]",
            "t.id IN {parent_of:{P_LEAF}}",
            "parent_of: the record and its ancestors",
        ),
        partner(
            "['!', ('id','child_of',{P_PARENT})]",
            "t.id NOT IN {child_of:{P_PARENT}}",
            "negated child_of",
        ),
        partner(
            "[('company_id','child_of',1)]",
            "t.company_id IN (SELECT c.id FROM public.res_company c WHERE c.parent_path LIKE (SELECT s.parent_path FROM public.res_company s WHERE s.id = 1) || '%')",
            "res.company has parent_store: parent_path =like '<path>%', bypassing access",
        ),
        partner(
            "[('company_id','parent_of',[{C2}])]",
            "t.company_id IN (SELECT x::int4 FROM public.res_company s, unnest(string_to_array(rtrim(s.parent_path, '/'), '/')) x WHERE s.id = {C2})",
            "parent_of: the ids on the parent_path",
        ),
        // --- any / not any, dotted paths, one2many ---
        partner(
            "[('parent_id','any',[('is_company','=',True)])]",
            "t.parent_id IN (SELECT q.id FROM public.res_partner q WHERE q.is_company IS TRUE AND {prule:q})",
            "many2one any: comodel _search with active_test=False and the comodel's read rules",
        ),
        partner(
            "[('parent_id','not any',[('name','ilike','a')])]",
            "(t.parent_id IS NULL OR t.parent_id NOT IN (SELECT q.id FROM public.res_partner q WHERE q.name ILIKE '%a%' AND {prule:q}))",
            "many2one not any includes NULL",
        ),
        partner(
            "[('parent_id.name','ilike','a')]",
            "t.parent_id IN (SELECT q.id FROM public.res_partner q WHERE q.name ILIKE '%a%' AND {prule:q})",
            "dotted path = any",
        ),
        partner(
            "['!', ('parent_id.name','ilike','a')]",
            "(t.parent_id IS NULL OR t.parent_id NOT IN (SELECT q.id FROM public.res_partner q WHERE q.name ILIKE '%a%' AND {prule:q}))",
            "negated path = not any",
        ),
        partner(
            "[('parent_id.parent_id.name','ilike','a')]",
            "t.parent_id IN (SELECT q.id FROM public.res_partner q WHERE {prule:q} AND q.parent_id IN (SELECT q2.id FROM public.res_partner q2 WHERE q2.name ILIKE '%a%' AND {prule:q2}))",
            "two-step path: rules at each step",
        ),
        partner(
            "[('parent_id.active','=',False)]",
            "t.parent_id IN (SELECT q.id FROM public.res_partner q WHERE q.active IS NOT TRUE AND {prule:q})",
            "a path ending in active does not count as mentioning active: the active test stays",
        ),
        partner(
            "[('parent_id.category_id','in',[{TAG1}])]",
            "t.parent_id IN (SELECT q.id FROM public.res_partner q WHERE {prule:q} AND EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = q.id AND r.category_id = {TAG1}))",
            "path through many2one then many2many ids",
        ),
        partner(
            "[('company_id.name','ilike','corp')]",
            "t.company_id IN (SELECT c.id FROM public.res_company c WHERE c.name ILIKE '%corp%' AND {crule:c})",
            "path to res.company: the company read rules apply (jeff sees only his company)",
        )
        .needs(COMPANIES),
        partner(
            "[('company_id','ilike','company')]",
            "t.company_id IN (SELECT c.id FROM public.res_company c WHERE c.name ILIKE '%company%' AND {crule:c})",
            "many2one with a string: display_name search on the comodel (archived included, rules apply)",
        )
        .needs(COMPANIES),
        partner(
            "[('child_ids','any',[('email','ilike','@')])]",
            "EXISTS (SELECT 1 FROM public.res_partner q WHERE q.parent_id = t.id AND q.email ILIKE '%@%' AND q.active IS TRUE AND {prule:q})",
            "one2many any: comodel search with active test and rules",
        ),
        partner(
            "[('child_ids','not any',[])]",
            "NOT EXISTS (SELECT 1 FROM public.res_partner q WHERE q.parent_id = t.id AND q.active IS TRUE AND {prule:q})",
            "one2many not any TRUE: no visible active child",
        ),
        partner(
            "[('child_ids','=',False)]",
            "NOT EXISTS (SELECT 1 FROM public.res_partner q WHERE q.parent_id = t.id AND q.active IS TRUE)",
            "x2many in (False): sudo, active_test=False, but child_ids' field domain [('active','=',True)] is added",
        ),
        partner(
            "[('child_ids','in',[{P_ARCH_CHILD}])]",
            "EXISTS (SELECT 1 FROM public.res_partner q WHERE q.parent_id = t.id AND q.id = {P_ARCH_CHILD} AND q.active IS TRUE)",
            "x2many in ids: sudo query plus child_ids' field domain (active = True): an archived child never matches",
        ),
        partner(
            "[('child_ids.child_ids','!=',False)]",
            "EXISTS (SELECT 1 FROM public.res_partner q WHERE q.parent_id = t.id AND q.active IS TRUE AND {prule:q} AND EXISTS (SELECT 1 FROM public.res_partner q2 WHERE q2.parent_id = q.id AND q2.active IS TRUE))",
            "path through one2many then != False (sudo, field domain)",
        ),
        partner(
            "[('user_ids','!=',False)]",
            "EXISTS (SELECT 1 FROM public.res_users u WHERE u.partner_id = t.id)",
            "one2many != False: sudo with active_test=False, so archived users count",
        ),
        // --- many2many ---
        partner(
            "[('category_id','in',[{TAG1},{TAG2}])]",
            "EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = t.id AND r.category_id IN ({TAG1},{TAG2}))",
            "many2many in ids: sudo, no access check, archived tags count",
        ),
        partner(
            "[('category_id','=',False)]",
            "NOT EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = t.id)",
            "many2many = False: no tag at all (archived ones included)",
        ),
        partner(
            "[('category_id','!=',False)]",
            "EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = t.id)",
            "many2many != False",
        ),
        partner(
            "[('category_id','not in',[{TAG1}])]",
            "NOT EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = t.id AND r.category_id = {TAG1})",
            "many2many not in: partners without that tag, untagged included",
        ),
        partner(
            "[('category_id','=',{TAG_ARCH})]",
            "EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = t.id AND r.category_id = {TAG_ARCH})",
            "many2many = id of an archived tag still matches (ids bypass the active test)",
        ),
        partner(
            "[('category_id.name','ilike','e')]",
            "EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r WHERE r.partner_id = t.id AND r.category_id IN (SELECT g.id FROM public.res_partner_category g WHERE g.active IS TRUE AND coalesce(g.name->>{lang}, g.name->>'en_US') ILIKE '%e%'))",
            "path into many2many: comodel search with access check, active test, translated name",
        )
        .needs(TAGS),
        partner(
            "[('category_id','child_of',{TAG2})]",
            "EXISTS (SELECT 1 FROM public.res_partner_res_partner_category_rel r JOIN public.res_partner_category g ON g.id = r.category_id WHERE r.partner_id = t.id AND g.active IS TRUE AND g.parent_path LIKE (SELECT s.parent_path FROM public.res_partner_category s WHERE s.id = {TAG2} AND s.active IS TRUE) || '%')",
            "many2many child_of: start ids searched (access check), then any! on parent_path (active test kept)",
        )
        .needs(TAGS),
        // --- active ---
        partner(
            "[('active','=',False)]",
            "t.active IS NOT TRUE",
            "domain mentions active: archived records only",
        )
        .active(),
        partner(
            r#"[["active","in",[true,false]]]"#,
            "TRUE",
            "active in [True, False]: everything (the active test is decided before optimisation)",
        )
        .active(),
        partner(
            "['|', ('active','=',True), ('name','ilike','a')]",
            "(t.active IS TRUE OR t.name ILIKE '%a%')",
            "active mentioned inside an OR: archived records with an 'a' come back",
        )
        .active(),
    ]
}

pub fn product_cases() -> Vec<Case> {
    // Translated fields compare COALESCE(col->>lang, col->>'en_US') (fields_textual.py to_sql).
    vec![
        product("[]", "TRUE", "empty domain: product_comp_rule and the active test"),
        product(
            "[('name','ilike','chair')]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') ILIKE '%chair%'",
            "translated name in the user's language, en_US fallback",
        ),
        product(
            "[('name','ilike','chaise')]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') ILIKE '%chaise%'",
            "the French name only matches for fr_FR users",
        ),
        product(
            "[('name','=','Office Chair')]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') = 'Office Chair'",
            "= on a translated field compares the user's translation",
        ),
        product(
            "[('name','!=','Office Chair')]",
            "(coalesce(t.name->>{lang}, t.name->>'en_US') IS NULL OR coalesce(t.name->>{lang}, t.name->>'en_US') <> 'Office Chair')",
            "!= on a translated field includes NULL",
        ),
        product(
            "[('name','in',['Office Chair','Chaise de bureau'])]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') IN ('Office Chair','Chaise de bureau')",
            "in on a translated field",
        ),
        product(
            "[('name','ilike','desk')]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') ILIKE '%desk%'",
            "en_US-only names fall back for fr_FR users",
        ),
        product(
            "[('name','like','Desk')]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') LIKE '%Desk%'",
            "like is case-sensitive",
        ),
        product(
            "[('name','not ilike','desk')]",
            "(coalesce(t.name->>{lang}, t.name->>'en_US') IS NULL OR coalesce(t.name->>{lang}, t.name->>'en_US') NOT ILIKE '%desk%')",
            "not ilike on a translated field",
        ),
        product(
            "[('name','=ilike','office%')]",
            "coalesce(t.name->>{lang}, t.name->>'en_US') ILIKE 'office%'",
            "=ilike pattern as given",
        ),
        product(
            "['!',('name','ilike','e')]",
            "(coalesce(t.name->>{lang}, t.name->>'en_US') IS NULL OR coalesce(t.name->>{lang}, t.name->>'en_US') NOT ILIKE '%e%')",
            "! inverts to not ilike",
        ),
        product(
            "['|',('name','ilike','chaise'),('name','ilike','chair')]",
            "(coalesce(t.name->>{lang}, t.name->>'en_US') ILIKE '%chaise%' OR coalesce(t.name->>{lang}, t.name->>'en_US') ILIKE '%chair%')",
            "either language's word, as the user sees it",
        ),
        product(
            "[('description_sale','ilike','chair')]",
            "coalesce(t.description_sale->>{lang}, t.description_sale->>'en_US') ILIKE '%chair%'",
            "translated text field",
        ),
        product(
            "[('type','=','service')]",
            "t.type = 'service'",
            "selection =",
        ),
        product(
            r#"[["type","in",["consu","combo"]]]"#,
            "t.type IN ('consu','combo')",
            "JSON in",
        ),
        product(
            r#"["|",["type","=","service"],["list_price",">=",100]]"#,
            "(t.type = 'service' OR t.list_price >= 100)",
            "JSON prefix OR; 0 >= 100 is false, so no NULL",
        ),
        product(
            "[('list_price','>',50)]",
            "t.list_price > 50",
            "float >",
        ),
        product(
            "[('list_price','<',100)]",
            "(t.list_price < 100 OR t.list_price IS NULL)",
            "float < includes NULL (0.0 < 100)",
        ),
        product(
            "[('list_price','=',0)]",
            "(t.list_price = 0 OR t.list_price IS NULL)",
            "float falsy 0.0 matches NULL",
        ),
        product(
            "['!', ('list_price','>',50)]",
            "(t.list_price <= 50 OR t.list_price IS NULL)",
            "negated > becomes <= (0.0 <= 50 holds: NULL included)",
        ),
        product(
            "[('sequence','>',3),('sequence','<',8)]",
            "t.sequence > 3 AND (t.sequence < 8 OR t.sequence IS NULL)",
            "integer range, implicit AND",
        ),
        product(
            "[('sale_ok','=',False)]",
            "t.sale_ok IS NOT TRUE",
            "boolean = False",
        ),
        product(
            "[('company_id','=',False)]",
            "t.company_id IS NULL",
            "many2one = False",
        ),
        product(
            "[('company_id','in',[{C2}])]",
            "t.company_id = {C2}",
            "many2one in ids",
        ),
        product(
            "[('company_id','parent_of',[{C2}])]",
            "t.company_id IN (SELECT x::int4 FROM public.res_company s, unnest(string_to_array(rtrim(s.parent_path, '/'), '/')) x WHERE s.id = {C2})",
            "parent_of through parent_path",
        ),
        product(
            "[('company_id.name','ilike','company')]",
            "t.company_id IN (SELECT c.id FROM public.res_company c WHERE c.name ILIKE '%company%' AND {crule:c})",
            "path to res.company applies the company rules",
        )
        .needs(COMPANIES),
        product(
            "[('categ_id','=',False)]",
            "t.categ_id IS NULL",
            "many2one to a model outside some fixtures, = False",
        ),
        product(
            "['|',('default_code','=like','FURN%'),('default_code','=like','SRV-%')]",
            "(t.default_code LIKE 'FURN%' OR t.default_code LIKE 'SRV-%')",
            "=like patterns",
        ),
        product(
            "[('default_code','=',False)]",
            "(t.default_code IS NULL OR t.default_code = '')",
            "char = False",
        ),
        product(
            "[('id','not in',[1,2])]",
            "t.id NOT IN (1,2)",
            "id not in (id is never NULL)",
        ),
        product(
            "[('active','=',False)]",
            "t.active IS NOT TRUE",
            "archived products only",
        )
        .active(),
        product(
            "['|', ('active','=',False), ('type','=','service')]",
            "(t.active IS NOT TRUE OR t.type = 'service')",
            "active mentioned in an OR",
        )
        .active(),
    ]
}
