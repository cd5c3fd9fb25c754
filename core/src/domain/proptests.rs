//! Property tests: the parsers never panic, canonical domains round-trip through JSON, and the
//! compiler never panics and never puts a value into the SQL text.

use proptest::prelude::*;

use super::tests::{ctx, schema};
use super::*;

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e12f64..1e12).prop_map(Value::Float),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::List)
    })
}

fn arb_op() -> impl Strategy<Value = Operator> {
    prop::sample::select(Operator::ALL.to_vec())
}

/// Canonical domains (built with `and`/`or`), with arbitrary paths and values.
fn arb_domain(paths: BoxedStrategy<String>, values: BoxedStrategy<Value>) -> BoxedStrategy<Domain> {
    let p2 = paths.clone();
    let leaf = prop_oneof![
        1 => Just(Domain::True),
        1 => Just(Domain::False),
        8 => (paths.clone(), arb_op(), values.clone()).prop_map(|(path, op, v)| {
            let op = if matches!(op, Operator::Any | Operator::NotAny) { Operator::Eq } else { op };
            Domain::leaf(path, op, v)
        }),
    ];
    leaf.prop_recursive(4, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(and),
            prop::collection::vec(inner.clone(), 0..4).prop_map(or),
            inner.clone().prop_map(|d| Domain::Not(Box::new(d))),
            (p2.clone(), any::<bool>(), inner).prop_map(|(p, neg, d)| Domain::any(p, neg, d)),
        ]
    })
    .boxed()
}

fn placeholders(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 {
                out.push(text[i + 1..j].parse().unwrap());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

const FIELDS: [&str; 24] = [
    "id",
    "name",
    "email",
    "comment",
    "type",
    "is_company",
    "active",
    "color",
    "credit_limit",
    "date",
    "create_date",
    "company_id",
    "parent_id",
    "user_id",
    "child_ids",
    "user_ids",
    "category_id",
    "barcode",
    "display_name",
    "email_formatted",
    "properties",
    "parent_id.name",
    "company_id.parent_id.name",
    "nope",
];

/// Values whose strings carry a marker that must never reach the SQL text.
fn marked_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..30).prop_map(Value::Int),
        (-3.0f64..3.0).prop_map(Value::Float),
        "[a-z%_' ;\"-]{0,6}".prop_map(|s| Value::Str(format!("zq{s}"))),
        Just(Value::Str("2024-02-29".into())),
        Just(Value::Str("2024-01-01 10:00:00".into())),
        Just(Value::Str(String::new())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::List)
    })
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // no regression files outside this module's folder
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
        let _ = parse_rule(&text, &ctx());
    }

    #[test]
    fn parse_never_panics_on_domain_like_text(
        text in "[\\[\\]\\(\\),'\"a-z0-9 |&!=<>.\\\\+\\-_#\\n]{0,120}"
    ) {
        let _ = parse(&text);
        let _ = parse_rule(&text, &ctx());
    }

    #[test]
    fn mutated_domains_never_panic(
        d in arb_domain(".{1,6}".boxed(), arb_value().boxed()),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let text = to_json(&d).to_string();
        let mut bytes = text.into_bytes();
        let at = cut.index(bytes.len() + 1);
        bytes.insert(at, byte);
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text);
        let mut end = at.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let _ = parse(&text[..end]);
    }

    #[test]
    fn json_round_trip(d in arb_domain(".{1,8}".boxed(), arb_value().boxed())) {
        let json = to_json(&d);
        let back = parse(&json.to_string());
        prop_assert_eq!(back.as_ref(), Ok(&d), "{}", json);
        let from = from_json(&json);
        prop_assert_eq!(from.as_ref(), Ok(&d));
    }

    #[test]
    fn compile_never_panics_and_parameterises(
        d in arb_domain(prop::sample::select(FIELDS.to_vec()).prop_map(String::from).boxed(), marked_value()),
        active_test in any::<bool>(),
        first in 1usize..10,
    ) {
        let sch = schema();
        let opts = CompileOptions { lang: "fr_FR", company_id: 3, active_test };
        if let Ok(sql) = compile(&d, &sch.models["res.partner"], &sch, "t", first, &opts) {
            prop_assert!(!sql.text.contains("zq"), "{}", sql.text);
            prop_assert!(!sql.text.contains('\0'));
            let mut seen = placeholders(&sql.text);
            seen.sort_unstable();
            seen.dedup();
            let expected: Vec<usize> = (first..first + sql.params.len()).collect();
            prop_assert_eq!(seen, expected, "{}", sql.text);
            // parentheses are balanced
            let mut level = 0i64;
            for ch in sql.text.chars() {
                match ch {
                    '(' => level += 1,
                    ')' => level -= 1,
                    _ => {}
                }
                prop_assert!(level >= 0, "{}", sql.text);
            }
            prop_assert_eq!(level, 0, "{}", sql.text);
        }
    }

    #[test]
    fn negation_is_consistent(
        d in arb_domain(prop::sample::select(FIELDS.to_vec()).prop_map(String::from).boxed(), marked_value()),
    ) {
        // compiling !d succeeds exactly when compiling d does
        let sch = schema();
        let m = &sch.models["res.partner"];
        let pos = compile(&d, m, &sch, "t", 1, &CompileOptions { lang: "en_US", company_id: 1, active_test: false });
        let neg = compile(&Domain::Not(Box::new(d.clone())), m, &sch, "t", 1, &CompileOptions { lang: "en_US", company_id: 1, active_test: false });
        prop_assert_eq!(pos.is_ok(), neg.is_ok(), "{:?} / {:?}", pos, neg);
        if let (Ok(p), Ok(n)) = (pos, neg) {
            if p.text == "TRUE" { prop_assert_eq!(n.text.as_str(), "FALSE"); }
            if p.text == "FALSE" { prop_assert_eq!(n.text.as_str(), "TRUE"); }
        }
    }

    #[test]
    fn compiled_searches_stay_within_the_limits(
        d in arb_domain(prop::sample::select(FIELDS.to_vec()).prop_map(String::from).boxed(), marked_value()),
        hops in 1usize..20,
    ) {
        // whatever the domain, a compiled condition has at most MAX_SUBQUERIES sub-selects, and
        // a path longer than MAX_PATH_HOPS anywhere in it makes compilation fail
        let sch = schema();
        let m = &sch.models["res.partner"];
        let opts = CompileOptions { lang: "en_US", company_id: 1, active_test: true };
        if let Ok(sql) = compile(&d, m, &sch, "t", 1, &opts) {
            prop_assert!(sql.text.matches("SELECT").count() <= MAX_SUBQUERIES, "{}", sql.text);
        }
        let path = vec!["parent_id"; hops].join(".") + ".name";
        let with_path = and(vec![d, Domain::leaf(path, Operator::Eq, Value::Str("x".into()))]);
        let r = compile(&with_path, m, &sch, "t", 1, &opts);
        if hops > MAX_PATH_HOPS && with_path != Domain::False {
            prop_assert!(r.is_err(), "{:?}", r);
        }
    }
}
