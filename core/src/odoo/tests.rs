//! The read assembly against models held in memory: what each value, field list, order and
//! page turns into, and each way a read is refused.
use super::meta::{FieldMeta, ModelMeta};
use super::nested_read::{Builder, Style, fields_tree, specification_tree};
use super::select::{self, Shape};
use super::shape::Shaper;
use super::{Caller, ReadError, ReadFacts};
use crate::domain::{self, Domain, DomainError, FieldInfo, ModelInfo, Param, Schema};
use std::collections::HashMap;
use std::rc::Rc;

/// Library models: a book has an author (many2one), tags (many2many), chapters (one2many), a
/// translated title, a price, a cover (binary), a note only managers (group 7) read, and the
/// author's name through a related field.
struct Library {
    models: HashMap<String, Rc<ModelMeta>>,
    /// (may read, read rule) per model; absent: readable, no rule.
    access: HashMap<String, (bool, Option<Domain>)>,
    /// A comodel a search reached without read access.
    denied: std::cell::RefCell<Option<String>>,
}

fn model(name: &str, order: &str, fields: Vec<(FieldInfo, FieldMeta)>) -> Rc<ModelMeta> {
    let mut info = ModelInfo::new(name, &name.replace('.', "_"));
    let mut metas = HashMap::new();
    let id = FieldInfo {
        required: true,
        ..FieldInfo::new("id", "integer")
    };
    for (f, m) in std::iter::once((id, column())).chain(fields) {
        metas.insert(f.name.clone(), m);
        info = info.with(f);
    }
    Rc::new(ModelMeta::new(info, order.into(), metas, (1, 1)).unwrap())
}

fn column() -> FieldMeta {
    FieldMeta {
        has_column: true,
        ..FieldMeta::default()
    }
}

fn no_column() -> FieldMeta {
    FieldMeta::default()
}

impl Library {
    fn new() -> Library {
        let translated = FieldInfo {
            translate: true,
            ..FieldInfo::new("title", "char")
        };
        let author_name = FieldInfo {
            store: false,
            ..FieldInfo::new("author_name", "char")
        };
        let book = model(
            "x.book",
            "title desc, id",
            vec![
                (translated, column()),
                (FieldInfo::new("price", "float"), column()),
                (FieldInfo::new("published", "date"), column()),
                (FieldInfo::new("cover", "binary"), column()),
                (
                    FieldInfo::new("note", "text"),
                    FieldMeta {
                        groups: vec![7],
                        ..column()
                    },
                ),
                (FieldInfo::many2one("author_id", "x.author"), column()),
                (
                    FieldInfo::many2many("tag_ids", "x.tag", "x_book_tag_rel", "book_id", "tag_id"),
                    no_column(),
                ),
                (
                    FieldInfo::one2many("chapter_ids", "x.chapter", "book_id"),
                    no_column(),
                ),
                (
                    author_name,
                    FieldMeta {
                        related: Some("author_id.name".into()),
                        ..no_column()
                    },
                ),
            ],
        );
        let author = model(
            "x.author",
            "name",
            vec![
                (FieldInfo::new("name", "char"), column()),
                (FieldInfo::new("active", "boolean"), column()),
                (FieldInfo::many2one("country_id", "x.country"), column()),
            ],
        );
        let country = model(
            "x.country",
            "id",
            vec![(
                FieldInfo {
                    translate: true,
                    ..FieldInfo::new("name", "char")
                },
                column(),
            )],
        );
        let tag = model(
            "x.tag",
            "name",
            vec![(FieldInfo::new("name", "char"), column())],
        );
        let chapter = model(
            "x.chapter",
            "sequence, id",
            vec![
                (FieldInfo::new("name", "char"), column()),
                (FieldInfo::new("sequence", "integer"), column()),
                (FieldInfo::many2one("book_id", "x.book"), column()),
                (FieldInfo::many2one("editor_id", "x.author"), column()),
            ],
        );
        let models = [book, author, country, tag, chapter]
            .into_iter()
            .map(|m| (m.info.model.clone(), m))
            .collect();
        Library {
            models,
            access: HashMap::new(),
            denied: Default::default(),
        }
    }

    fn deny(mut self, model: &str) -> Self {
        self.access.insert(model.into(), (false, None));
        self
    }

    fn rule(mut self, model: &str, rule: &str) -> Self {
        self.access
            .insert(model.into(), (true, Some(domain::parse(rule).unwrap())));
        self
    }

    fn book(&self) -> Rc<ModelMeta> {
        self.models["x.book"].clone()
    }
}

impl Schema for Library {
    fn model(&self, name: &str) -> Option<&ModelInfo> {
        self.models.get(name).map(|m| &m.info)
    }

    fn read_rule(&self, model: &str) -> Result<Option<Domain>, DomainError> {
        let (allowed, rule) = self.read_access(model);
        if !allowed {
            *self.denied.borrow_mut() = Some(model.into());
            return Err(DomainError::InvalidValue(format!(
                "no read access to {model}"
            )));
        }
        Ok(rule)
    }

    fn related(&self, model: &str, field: &str) -> Option<String> {
        self.models.get(model)?.fields.get(field)?.related.clone()
    }
}

impl ReadFacts for Library {
    fn meta(&self, model: &str) -> Option<Rc<ModelMeta>> {
        self.models.get(model).cloned()
    }

    fn table_exists(&self, table: &str) -> bool {
        self.models.values().any(|m| m.table() == table)
    }

    fn read_access(&self, model: &str) -> (bool, Option<Domain>) {
        self.access.get(model).cloned().unwrap_or((true, None))
    }

    fn denied_comodel(&self) -> Option<String> {
        self.denied.borrow().clone()
    }
}

const GROUPS: &[i64] = &[1, 2];

fn caller() -> Caller<'static> {
    Caller {
        uid: 5,
        superuser: false,
        lang: "fr_FR",
        company_id: 1,
        groups: GROUPS,
    }
}

/// A shaper whose statement has two parameters so far: the language ($1) and company ($2).
fn shaper(lib: &Library) -> Shaper<'_> {
    Shaper::new(
        lib,
        caller(),
        vec![Param::Text("fr_FR".into()), Param::Int(1)],
        1,
        2,
    )
}

fn strings(items: &[&str]) -> Option<Vec<Option<String>>> {
    Some(items.iter().map(|s| Some(s.to_string())).collect())
}

#[test]
fn scalar_values_are_shaped_as_odoo_reads_them() {
    let lib = Library::new();
    let s = shaper(&lib);
    let book = lib.book();
    assert_eq!(
        s.value(&book, "price").unwrap(),
        "to_jsonb(coalesce(t.\"price\", 0))"
    );
    assert_eq!(
        s.value(&book, "published").unwrap(),
        "coalesce(to_jsonb(to_char(t.\"published\", 'YYYY-MM-DD')), 'false'::jsonb)"
    );
    let title = s.value(&book, "title").unwrap();
    assert!(
        title.contains("t.\"title\"->>$1") && title.contains("->>'en_US'"),
        "{title}"
    );
}

#[test]
fn a_many2one_is_its_id_and_the_comodels_display_name() {
    let lib = Library::new();
    let s = shaper(&lib);
    let v = s.value(&lib.book(), "author_id").unwrap();
    assert!(
        v.starts_with("CASE WHEN t.\"author_id\" IS NULL THEN 'false'::jsonb"),
        "{v}"
    );
    assert!(v.contains("jsonb_build_array(t.\"author_id\""), "{v}");
    // the author's _rec_name, read from its own table
    assert!(v.contains("FROM public.\"x_author\""), "{v}");
}

#[test]
fn a_related_field_is_read_through_its_path() {
    let lib = Library::new();
    let s = shaper(&lib);
    let v = s.value(&lib.book(), "author_name").unwrap();
    assert!(
        v.contains(
            "(SELECT v1.\"name\" FROM public.\"x_author\" v1 WHERE v1.id = t.\"author_id\")"
        ),
        "{v}"
    );
}

#[test]
fn x2many_lines_follow_the_comodels_rules_order_and_active_flag() {
    let lib = Library::new().rule("x.chapter", "[('sequence', '>', 0)]");
    let s = shaper(&lib);
    let v = s.value(&lib.book(), "chapter_ids").unwrap();
    assert!(
        v.contains("FROM public.\"x_chapter\" c1 WHERE c1.\"book_id\" = t.id"),
        "{v}"
    );
    // the rule, with its value as a new parameter after the caller's two
    assert!(v.contains("$3"), "{v}");
    // the comodel's _order without the inverse field every line shares, id last
    assert!(
        v.contains("ORDER BY c1.\"sequence\" ASC, c1.\"id\" ASC)"),
        "{v}"
    );
    assert_eq!(s.into_params().len(), 3);

    let s = shaper(&lib);
    let tags = s.value(&lib.book(), "tag_ids").unwrap();
    assert!(
        tags.contains(
            "FROM public.\"x_book_tag_rel\" r2 JOIN public.\"x_tag\" c1 ON c1.id = r2.\"tag_id\""
        ),
        "{tags}"
    );
    assert!(tags.contains("r2.\"book_id\" = t.id"), "{tags}");
}

#[test]
fn an_x2many_of_a_comodel_the_reader_may_not_read_is_refused() {
    let lib = Library::new().deny("x.tag");
    let s = shaper(&lib);
    match s.value(&lib.book(), "tag_ids") {
        Err(ReadError::Denied(m)) => assert!(m.contains("no read access to x.tag"), "{m}"),
        other => panic!("{other:?}"),
    }
    // and the default field list leaves it out instead
    let names = select::select_fields(&s, &lib.book(), None).unwrap();
    assert!(!names.contains(&"tag_ids".to_string()), "{names:?}");
    assert!(names.contains(&"chapter_ids".to_string()), "{names:?}");
}

#[test]
fn a_rule_the_gateway_cannot_enforce_refuses_the_read() {
    let lib = Library::new().rule("x.chapter", "[('no_such_field', '=', 1)]");
    let s = shaper(&lib);
    match s.value(&lib.book(), "chapter_ids") {
        Err(ReadError::Unenforceable { model, .. }) => assert_eq!(model, "x.chapter"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_superuser_reads_lines_without_rules() {
    let lib = Library::new().deny("x.tag");
    let s = Shaper::new(
        &lib,
        Caller {
            superuser: true,
            ..caller()
        },
        vec![],
        1,
        2,
    );
    assert!(s.value(&lib.book(), "tag_ids").is_ok());
}

#[test]
fn requested_fields_are_checked_as_odoo_checks_them() {
    let lib = Library::new();
    let s = shaper(&lib);
    let book = lib.book();
    match select::select_fields(&s, &book, strings(&["nope"])) {
        Err(ReadError::Invalid { message, .. }) => {
            assert_eq!(message, "invalid field list: unknown field x.book.nope")
        }
        other => panic!("{other:?}"),
    }
    match select::select_fields(&s, &book, strings(&["note"])) {
        Err(ReadError::Denied(m)) => assert!(m.contains("restricted to groups"), "{m}"),
        other => panic!("{other:?}"),
    }
    match select::select_fields(&s, &book, strings(&["cover"])) {
        Err(ReadError::Invalid { message, hint }) => {
            assert!(message.contains("binary"), "{message}");
            assert!(hint.is_some_and(|h| h.contains("--odoo-url")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        select::select_fields(&s, &book, strings(&["title", "price", "title"])).unwrap(),
        vec!["id", "title", "price"]
    );
    let (sql, odoo) =
        select::split_fields(&s, &book, vec!["cover".into(), "price".into()]).unwrap();
    assert_eq!(
        (sql, odoo),
        (vec!["id".into(), "price".into()], vec!["cover".into()])
    );
}

#[test]
fn a_manager_reads_the_restricted_field_and_the_default_list_has_it() {
    let lib = Library::new();
    let groups = [7];
    let s = Shaper::new(
        &lib,
        Caller {
            groups: &groups,
            ..caller()
        },
        vec![],
        1,
        2,
    );
    let names = select::select_fields(&s, &lib.book(), None).unwrap();
    assert_eq!(names[0], "id");
    assert!(names.contains(&"note".to_string()));
    assert!(
        !names.contains(&"cover".to_string()),
        "binary fields are Odoo's"
    );
    assert!(!names.contains(&"author_name".to_string()), "not stored");
    let plain = select::select_fields(&shaper(&lib), &lib.book(), None).unwrap();
    assert!(!plain.contains(&"note".to_string()));
}

#[test]
fn orders_are_checked_translated_and_end_with_id() {
    let lib = Library::new();
    let book = lib.book();
    let terms = select::order_terms(&book, None, "t", 1).unwrap();
    assert_eq!(
        select::order_by(&terms),
        "coalesce(t.\"title\"->>$1, t.\"title\"->>'en_US') DESC, t.\"id\" ASC"
    );
    assert_eq!(select::order_signature(&terms), "title desc,id asc");
    let terms = select::order_terms(&book, Some("price"), "b", 1).unwrap();
    assert_eq!(select::order_by(&terms), "b.\"price\" ASC, b.\"id\" ASC");
    match select::order_terms(&book, Some("price; drop"), "t", 1) {
        Err(ReadError::Invalid { message, .. }) => assert!(message.starts_with("invalid order:")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pages_take_the_settings_default_and_cap() {
    assert_eq!(
        select::page((80, 1000), None, None).unwrap(),
        select::Page {
            limit: 80,
            offset: 0
        }
    );
    assert_eq!(
        select::page((80, 1000), Some(5000), Some(3)).unwrap().limit,
        1000
    );
    assert!(matches!(
        select::page((80, 1000), Some(-1), None),
        Err(ReadError::Invalid { .. })
    ));
    assert!(matches!(
        select::page((80, 1000), None, Some(-1)),
        Err(ReadError::Invalid { .. })
    ));
}

#[test]
fn the_search_read_statement_carries_only_the_columns_it_uses() {
    let lib = Library::new();
    let s = shaper(&lib);
    let book = lib.book();
    let pairs = select::record_pairs(&s, &book, strings(&["price"]), None).unwrap();
    let terms = select::order_terms(&book, Some("price desc"), "t", 1).unwrap();
    let from = "FROM public.\"x_book\" t WHERE true";
    let list = select::search_read_sql(pairs.clone(), &terms, from, Some((3, 4)), Shape::List);
    assert!(
        list.contains("SELECT t.\"id\", t.\"price\" FROM public.\"x_book\" t"),
        "{list}"
    );
    assert!(list.contains("LIMIT $3::int8 OFFSET $4::int8"), "{list}");
    let one = select::search_read_sql(pairs.clone(), &terms, from, None, Shape::Single);
    assert!(
        one.starts_with("SELECT (") && one.ends_with(") -> 0"),
        "{one}"
    );
    let versioned = select::search_read_sql(pairs, &terms, from, None, Shape::Versioned);
    assert!(
        versioned.contains("t.xmin::text AS \"__agw_xmin\""),
        "{versioned}"
    );
    assert!(
        versioned.contains("'record', r - '__agw_version'"),
        "{versioned}"
    );
}

#[test]
fn projection_keeps_the_named_columns_or_the_whole_row() {
    assert_eq!(
        select::projection(&["to_jsonb(t.\"name\")", "t.id ASC", "\"t\".\"name\""]),
        "t.\"name\", t.\"id\""
    );
    assert_eq!(select::projection(&["to_jsonb(t)"]), "t.*");
    assert_eq!(select::projection(&["t.\"Bad-Name\""]), "t.*");
    assert_eq!(select::projection(&["1"]), "t.id");
}

#[test]
fn a_keyset_compares_with_the_cursors_key_null_aware_where_needed() {
    let lib = Library::new();
    let book = lib.book();
    let terms = select::order_terms(&book, Some("price, published"), "t", 1).unwrap();
    let sql = select::keyset_sql(&book, &terms, 9, &["price".to_string()]).unwrap();
    assert!(
        sql.contains("jsonb_populate_record(NULL::public.\"x_book\", $9::jsonb)"),
        "{sql}"
    );
    // published may be NULL: the comparison says what a NULL key means
    assert!(sql.contains("IS NULL"), "{sql}");
    let page = select::page_sql(
        &[("id".into(), "to_jsonb(t.id)".into())],
        &terms,
        "FROM x t",
        "",
        10,
    );
    assert!(page.contains("LIMIT $10::int8 + 1"), "{page}");
}

#[test]
fn nested_reads_check_each_level() {
    let lib = Library::new();
    let s = shaper(&lib);
    let book = lib.book();
    let tree = fields_tree(&strings(&["author_id{name,country_id}"]))
        .unwrap()
        .unwrap();
    let pairs = Builder::new(&s, Style::Read)
        .pairs(&book, "t", &tree, "")
        .unwrap();
    assert_eq!(pairs[0].0, "id");
    let (key, author) = &pairs[1];
    assert_eq!(key, "author_id");
    assert!(author.contains("'name', "), "{author}");
    // a many2one without sub-fields inside stays [id, display_name] in the Read style
    assert!(
        author.contains("jsonb_build_array(n1.\"country_id\""),
        "{author}"
    );

    let bad = |fields: &[&str]| {
        let tree = fields_tree(&strings(fields)).unwrap().unwrap();
        Builder::new(&shaper(&lib), Style::Read)
            .pairs(&book, "t", &tree, "")
            .unwrap_err()
    };
    assert!(matches!(
        bad(&["display_name{id}"]),
        ReadError::Invalid { .. }
    ));
    assert!(matches!(bad(&["price{id}"]), ReadError::Invalid { .. }));
    assert!(matches!(
        bad(&["author_id(limit=2){name}"]),
        ReadError::Invalid { .. }
    ));
    assert!(matches!(bad(&["note{id}"]), ReadError::Denied(_)));
    match bad(&["author_id{nope}"]) {
        ReadError::Invalid { message, .. } => {
            assert!(message.contains("at author_id.nope"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_nested_record_the_reader_may_not_read_is_refused_when_evaluated() {
    let lib = Library::new().deny("x.author");
    let s = shaper(&lib);
    let tree =
        specification_tree(&serde_json::json!({"author_id": {"fields": {"name": {}}}})).unwrap();
    let pairs = Builder::new(&s, Style::Web)
        .pairs(&lib.book(), "t", &tree, "")
        .unwrap();
    assert!(
        pairs[1]
            .1
            .contains("api_gateway._nested_read_refused($3::int4, 'x.author'"),
        "{}",
        pairs[1].1
    );
    // the reader's uid became the statement's third parameter
    assert_eq!(s.into_params()[2], Param::Int(5));

    // id and display_name alone need no access (Odoo reads display_name as the superuser)
    let s = shaper(&lib);
    let tree =
        specification_tree(&serde_json::json!({"author_id": {"fields": {"display_name": {}}}}))
            .unwrap();
    let pairs = Builder::new(&s, Style::Web)
        .pairs(&lib.book(), "t", &tree, "")
        .unwrap();
    assert!(
        !pairs[1].1.contains("_nested_read_refused"),
        "{}",
        pairs[1].1
    );
}

#[test]
fn nested_lines_take_their_own_order_and_limit() {
    let lib = Library::new();
    let s = shaper(&lib);
    let tree = fields_tree(&strings(&[
        "chapter_ids(limit=2,order=name desc){name,editor_id{name}}",
    ]))
    .unwrap()
    .unwrap();
    let pairs = Builder::new(&s, Style::Read)
        .pairs(&lib.book(), "t", &tree, "")
        .unwrap();
    let v = &pairs[1].1;
    assert!(
        v.contains("row_number() OVER (ORDER BY c1.\"name\" DESC, c1.\"id\" ASC)"),
        "{v}"
    );
    // the editors of all lines come from one join, not one subquery per line
    assert!(v.contains("LEFT JOIN (SELECT"), "{v}");
    assert_eq!(s.into_params().last(), Some(&Param::Int(2)));
    let bad = fields_tree(&strings(&["chapter_ids(order=nope){name}"]))
        .unwrap()
        .unwrap();
    assert!(matches!(
        Builder::new(&shaper(&lib), Style::Read).pairs(&lib.book(), "t", &bad, ""),
        Err(ReadError::Invalid { .. })
    ));
}

#[test]
fn a_relation_table_that_cannot_be_named_is_refused() {
    let mut lib = Library::new();
    let long = "r".repeat(64);
    let odd = model(
        "x.odd",
        "id",
        vec![(
            FieldInfo::many2many("tag_ids", "x.tag", &long, "a", "b"),
            no_column(),
        )],
    );
    lib.models.insert("x.odd".into(), odd.clone());
    assert!(matches!(
        shaper(&lib).value(&odd, "tag_ids"),
        Err(ReadError::BadName(_))
    ));
}

mod visible_rows {
    use super::*;
    use crate::odoo::visible::{AttachmentFacts, Rules, attachment_access, visible_rows};

    fn no_attachments() -> AttachmentFacts {
        AttachmentFacts {
            res_models: vec![],
            system_group: None,
        }
    }

    fn rows(lib: &Library, domain: &str, rules: &[Rule]) -> Result<String, ReadError> {
        let eval = HashMap::<String, domain::Value>::new;
        let combined = crate::rules::combine("x.book", rules, &eval(), |_, d| d).ok();
        let r = Rules {
            domain: combined.as_ref(),
            rules,
            eval: &eval,
        };
        let d = domain::parse(domain).unwrap();
        visible_rows(lib, &caller(), &lib.book(), &d, &r, true, no_attachments)
            .map(|q| q.from_where)
    }

    type Rule = crate::rules::Rule;

    fn rule(id: i32, text: &str) -> Rule {
        ("x.book".into(), id, format!("rule {id}"), text.into(), true)
    }

    #[test]
    fn the_domain_and_the_rules_make_one_condition() {
        let lib = Library::new();
        let sql = rows(
            &lib,
            "[('price', '>', 3)]",
            &[rule(4, "[('price', '<', 100)]")],
        )
        .unwrap();
        assert!(sql.starts_with("FROM public.\"x_book\" t WHERE "), "{sql}");
        assert!(sql.contains("$1") && sql.contains("$2"), "{sql}");
    }

    #[test]
    fn a_bad_domain_is_the_callers_mistake() {
        let lib = Library::new();
        match rows(&lib, "[('nope', '=', 1)]", &[]) {
            Err(ReadError::Invalid { message, .. }) => {
                assert!(message.starts_with("invalid domain:"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn searching_through_a_comodel_the_reader_may_not_read_is_denied() {
        let lib = Library::new().deny("x.author");
        match rows(&lib, "[('author_id.name', '=', 'Ann')]", &[]) {
            Err(ReadError::Denied(m)) => assert!(
                m.contains("may not read records of model x.author (searched through the domain)"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rule_that_cannot_be_compiled_is_named_and_refuses_the_read() {
        let lib = Library::new();
        let rules = [
            rule(3, "[('price', '>', 0)]"),
            rule(9, "[('nope', '=', 1)]"),
        ];
        match rows(&lib, "[]", &rules) {
            Err(ReadError::Unenforceable {
                model,
                rule_id,
                rule_name,
                ..
            }) => assert_eq!(
                (model.as_str(), rule_id, rule_name.as_str()),
                ("x.book", 9, "rule 9")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attachments_follow_the_attached_records_rights() {
        let lib = Library::new()
            .rule("x.author", "[('name', '=', 'Ann')]")
            .deny("x.tag");
        let known = AttachmentFacts {
            res_models: vec![
                "x.author".into(),
                "x.tag".into(),
                "x.unknown".into(),
                "Bad Name".into(),
            ],
            system_group: Some(4),
        };
        let (cond, params) = attachment_access(&lib, &caller(), &known, 3);
        assert!(
            cond.contains(
                "t.res_model = 'x.author' AND EXISTS (SELECT 1 FROM public.\"x_author\" att0"
            ),
            "{cond}"
        );
        assert!(
            !cond.contains("x.tag") && !cond.contains("x.unknown") && !cond.contains("Bad"),
            "{cond}"
        );
        assert!(
            cond.contains("t.create_uid = 5"),
            "not a system administrator: {cond}"
        );
        // the author rule's value is the first parameter after the caller's two
        assert_eq!(params, vec![Param::Text("Ann".into())], "{cond}");
        assert!(cond.contains("$3"), "{cond}");
        let admin_groups = [4];
        let admin = Caller {
            groups: &admin_groups,
            ..caller()
        };
        let (cond, _) = attachment_access(&lib, &admin, &known, 1);
        assert!(cond.contains("((TRUE) AND"), "{cond}");
    }
}
