//! Nested reads: which fields to read on a model and, for its relational fields, on their
//! comodels. Two spellings give the same tree of [`Node`]s:
//!
//! - the `fields` list: `name,partner_id{name,email},order_line(limit=5,order='sequence desc'){product_id{name},price_subtotal}`;
//! - a `specification` shaped like Odoo 17+'s `web_read`:
//!   `{"partner_id": {"fields": {"name": {}}}, "order_line": {"fields": {...}, "limit": 5, "order": "sequence desc"}}`.
//!
//! A node without sub-fields is read as a plain field; `{...}` (or `"fields"`) reads the related
//! records with those fields. `limit` and `order` follow Odoo's `web_read`: the x2many's ids are
//! sorted by `order`, and only the first `limit` of them are read (the others come back as `{"id": N}`).
//! Depth, size and names are bounded here; whether a name exists and may be read is the caller's.
use serde_json::{Map, Value};

/// How many levels of `{...}` may nest below the model read (order → line → product → category).
pub const MAX_DEPTH: usize = 4;
/// Fields named in one request, at every level together.
pub const MAX_NODES: usize = 1000;
/// Longest `fields` text or specification accepted (bytes).
pub const MAX_TEXT: usize = 64 * 1024;
const MAX_NAME: usize = 64;
const MAX_ORDER: usize = 512;

/// One field to read and, for a relational field, what to read of the related records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// `Some`: read the related records with these fields (an empty list reads only `id`).
    pub fields: Option<Vec<Node>>,
    /// x2many: read only the first `limit` related records in full.
    pub limit: Option<u32>,
    /// x2many: the order of the related records (an Odoo `order` string, checked by the caller).
    pub order: Option<String>,
}

impl Node {
    pub fn plain(name: &str) -> Self {
        Node {
            name: name.to_string(),
            fields: None,
            limit: None,
            order: None,
        }
    }

    /// Read as a plain field (no sub-fields, no x2many option).
    pub fn is_plain(&self) -> bool {
        self.fields.is_none() && self.limit.is_none() && self.order.is_none()
    }
}

/// A malformed field list or specification: `at` is the dotted path of the bad part (empty at
/// the top), `message` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if at.is_empty() { String::new() } else { format!("at {at}: ") })]
pub struct SpecError {
    pub at: String,
    pub message: String,
}

fn err<T>(at: &str, message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError {
        at: at.to_string(),
        message: message.into(),
    })
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_name(at: &str, name: &str) -> Result<(), SpecError> {
    if valid_name(name) {
        Ok(())
    } else {
        let shown: String = name.chars().take(MAX_NAME).collect();
        err(
            at,
            format!("{shown:?} is not a field name (letters, digits and _)"),
        )
    }
}

fn check_order(at: &str, order: &str) -> Result<(), SpecError> {
    if order.len() > MAX_ORDER {
        return err(at, format!("order is longer than {MAX_ORDER} bytes"));
    }
    if order
        .chars()
        .any(|c| c.is_control() || c == '\'' || c == '"')
    {
        return err(at, "order holds a quote or a control character");
    }
    Ok(())
}

/// Adds `node` to `out`: the same field named twice the same way is read once; named twice
/// differently it is an error (which one would win?).
fn push(out: &mut Vec<Node>, node: Node, at: &str) -> Result<(), SpecError> {
    match out.iter().find(|n| n.name == node.name) {
        Some(n) if *n == node => Ok(()),
        Some(_) => err(
            &join(at, &node.name),
            "the field is named twice with different sub-fields or options",
        ),
        None => {
            out.push(node);
            Ok(())
        }
    }
}

/// Counts the nodes of a tree (the bound of [`MAX_NODES`]).
pub fn count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| 1 + n.fields.as_deref().map_or(0, count))
        .sum()
}

/// The deepest level of `{...}` in a tree (0 for a flat list).
pub fn depth(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| n.fields.as_deref().map_or(0, |f| 1 + depth(f)))
        .max()
        .unwrap_or(0)
}

fn check_size(nodes: &[Node]) -> Result<(), SpecError> {
    if count(nodes) > MAX_NODES {
        return err("", format!("more than {MAX_NODES} fields"));
    }
    Ok(())
}

/// Whether a field list item needs the nested parser (else it is a plain name, as before).
pub fn is_nested(item: &str) -> bool {
    item.contains(['{', '(', ','])
}

/// Splits a `fields` text on the commas that are not inside `{}`, `()` or quotes (the HTTP
/// front's `fields=`). Unbalanced text is kept whole in the last piece for the parser to report.
pub fn split_top_level(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{' | '(') => depth += 1,
            (None, '}' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.text[start..self.pos]
    }

    /// What follows, for error messages.
    fn here(&self) -> String {
        let rest: String = self.text[self.pos..].chars().take(20).collect();
        if rest.is_empty() {
            "the end of the text".into()
        } else {
            format!("{rest:?}")
        }
    }
}

/// Parses a `fields` list: items separated by commas, each `name`, `name{...}`,
/// `name(limit=N,order='...')` or `name(...){...}`. Several texts (a SQL `text[]`) are read as
/// one list.
pub fn parse_fields<S: AsRef<str>>(items: &[S]) -> Result<Vec<Node>, SpecError> {
    let total: usize = items.iter().map(|s| s.as_ref().len()).sum();
    if total > MAX_TEXT {
        return err(
            "",
            format!("the field list is longer than {MAX_TEXT} bytes"),
        );
    }
    let mut out = vec![];
    for item in items {
        let mut lx = Lexer {
            text: item.as_ref(),
            pos: 0,
        };
        for node in list(&mut lx, "", 0)? {
            push(&mut out, node, "")?;
        }
        lx.skip_ws();
        if lx.pos < lx.text.len() {
            return err("", format!("unexpected {} in the field list", lx.here()));
        }
        check_size(&out)?;
    }
    Ok(out)
}

/// `item (',' item)*` up to a `}` or the end; empty items are skipped.
fn list(lx: &mut Lexer, at: &str, depth: usize) -> Result<Vec<Node>, SpecError> {
    let mut out = vec![];
    loop {
        lx.skip_ws();
        match lx.peek() {
            None | Some('}') => return Ok(out),
            Some(',') => {
                lx.pos += 1;
                continue;
            }
            _ => {}
        }
        let node = item(lx, at, depth)?;
        push(&mut out, node, at)?;
        if count(&out) > MAX_NODES {
            return err("", format!("more than {MAX_NODES} fields"));
        }
        lx.skip_ws();
        match lx.peek() {
            None | Some('}') | Some(',') => {}
            Some(_) => {
                return err(
                    at,
                    format!("expected ',' or the end of the list, found {}", lx.here()),
                );
            }
        }
    }
}

fn item(lx: &mut Lexer, at: &str, depth: usize) -> Result<Node, SpecError> {
    let name = lx.word().to_string();
    if name.is_empty() {
        return err(at, format!("expected a field name, found {}", lx.here()));
    }
    check_name(at, &name)?;
    let here = join(at, &name);
    let mut node = Node::plain(&name);
    if lx.eat('(') {
        options(lx, &here, &mut node)?;
    }
    if lx.eat('{') {
        if depth >= MAX_DEPTH {
            return err(
                &here,
                format!("sub-fields nest deeper than {MAX_DEPTH} levels"),
            );
        }
        node.fields = Some(list(lx, &here, depth + 1)?);
        if !lx.eat('}') {
            return err(&here, format!("expected '}}', found {}", lx.here()));
        }
    }
    Ok(node)
}

/// `(limit=N, order='...')`: either, both, in any order.
fn options(lx: &mut Lexer, at: &str, node: &mut Node) -> Result<(), SpecError> {
    loop {
        if lx.eat(')') {
            return Ok(());
        }
        let key = lx.word().to_string();
        if !lx.eat('=') {
            return err(
                at,
                format!("expected limit=N or order='...', found {}", lx.here()),
            );
        }
        lx.skip_ws();
        match key.as_str() {
            "limit" if node.limit.is_none() => {
                let digits = lx.word().to_string();
                match digits.parse::<u32>() {
                    Ok(n) if digits.chars().all(|c| c.is_ascii_digit()) => node.limit = Some(n),
                    _ => {
                        return err(
                            at,
                            format!(
                                "limit must be a non-negative integer, not {:?}",
                                digits.chars().take(20).collect::<String>()
                            ),
                        );
                    }
                }
            }
            "order" if node.order.is_none() => {
                let order = match lx.peek() {
                    Some(q @ ('\'' | '"')) => {
                        let start = lx.pos + 1;
                        let Some(len) = lx.text[start..].find(q) else {
                            return err(at, "the quoted order is not closed");
                        };
                        lx.pos = start + len + 1;
                        lx.text[start..start + len].to_string()
                    }
                    _ => {
                        let start = lx.pos;
                        let len = lx.text[start..]
                            .find([',', ')'])
                            .unwrap_or(lx.text.len() - start);
                        lx.pos = start + len;
                        lx.text[start..start + len].to_string()
                    }
                };
                check_order(at, &order)?;
                let order = order.trim();
                node.order = (!order.is_empty()).then(|| order.to_string());
            }
            "limit" | "order" => return err(at, format!("{key} is given twice")),
            _ => {
                return err(
                    at,
                    format!(
                        "unknown option {:?} (limit and order are known)",
                        key.chars().take(20).collect::<String>()
                    ),
                );
            }
        }
        if !lx.eat(',') && lx.peek() != Some(')') {
            lx.skip_ws();
            if lx.peek() != Some(')') {
                return err(at, format!("expected ',' or ')', found {}", lx.here()));
            }
        }
    }
}

/// Parses a `web_read` specification: a JSON object of field name → `{}` or
/// `{"fields": {...}, "limit": N, "order": "..."}`.
pub fn parse_specification(spec: &Value) -> Result<Vec<Node>, SpecError> {
    if spec.to_string().len() > MAX_TEXT {
        return err(
            "",
            format!("the specification is longer than {MAX_TEXT} bytes"),
        );
    }
    let nodes = spec_object(spec, "", 0)?;
    check_size(&nodes)?;
    Ok(nodes)
}

fn spec_object(spec: &Value, at: &str, depth: usize) -> Result<Vec<Node>, SpecError> {
    let Value::Object(map) = spec else {
        return err(
            at,
            "a specification is a JSON object of field name to {...}",
        );
    };
    let mut out = vec![];
    for (name, value) in map {
        check_name(at, name)?;
        let here = join(at, name);
        let Value::Object(options) = value else {
            return err(
                &here,
                "each field maps to an object: {} or {\"fields\": {...}, \"limit\": N, \"order\": \"...\"}",
            );
        };
        let mut node = Node::plain(name);
        for (key, v) in options {
            match (key.as_str(), v) {
                ("fields", sub) => {
                    if depth >= MAX_DEPTH {
                        return err(
                            &here,
                            format!("sub-fields nest deeper than {MAX_DEPTH} levels"),
                        );
                    }
                    node.fields = Some(spec_object(sub, &here, depth + 1)?);
                }
                ("limit", Value::Null) | ("order", Value::Null) => {}
                ("limit", Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok())
                {
                    Some(n) => node.limit = Some(n),
                    None => return err(&here, "limit must be a non-negative integer"),
                },
                ("limit", _) => return err(&here, "limit must be a non-negative integer"),
                ("order", Value::String(o)) => {
                    check_order(&here, o)?;
                    let o = o.trim();
                    node.order = (!o.is_empty()).then(|| o.to_string());
                }
                ("order", _) => return err(&here, "order must be a string"),
                ("context", _) => {
                    return err(
                        &here,
                        "context is not supported in a specification (the language comes from the user or the request)",
                    );
                }
                (other, _) => {
                    return err(
                        &here,
                        format!(
                            "unknown key {:?} (fields, limit and order are known)",
                            other.chars().take(20).collect::<String>()
                        ),
                    );
                }
            }
        }
        out.push(node);
        if count(&out) > MAX_NODES {
            return err("", format!("more than {MAX_NODES} fields"));
        }
    }
    Ok(out)
}

/// The `fields` text of a tree (what [`parse_fields`] reads back).
pub fn to_text(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            let mut s = n.name.clone();
            let mut opts = vec![];
            if let Some(l) = n.limit {
                opts.push(format!("limit={l}"));
            }
            if let Some(o) = &n.order {
                let q = if o.contains('\'') { '"' } else { '\'' };
                opts.push(format!("order={q}{o}{q}"));
            }
            if !opts.is_empty() {
                s.push_str(&format!("({})", opts.join(",")));
            }
            if let Some(f) = &n.fields {
                s.push_str(&format!("{{{}}}", to_text(f)));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The `web_read` specification of a tree (what [`parse_specification`] reads back).
pub fn to_specification(nodes: &[Node]) -> Value {
    let mut map = Map::new();
    for n in nodes {
        let mut o = Map::new();
        if let Some(f) = &n.fields {
            o.insert("fields".into(), to_specification(f));
        }
        if let Some(l) = n.limit {
            o.insert("limit".into(), Value::from(l));
        }
        if let Some(ord) = &n.order {
            o.insert("order".into(), Value::from(ord.clone()));
        }
        map.insert(n.name.clone(), Value::Object(o));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Vec<Node>, SpecError> {
        parse_fields(&[s])
    }

    #[test]
    fn plain_and_nested_fields() {
        let n = parse("name, partner_id{name,email}, order_line{product_id{name},price_subtotal}")
            .unwrap();
        assert_eq!(n.len(), 3);
        assert!(n[0].is_plain());
        let p = n[1].fields.as_ref().unwrap();
        assert_eq!(p, &vec![Node::plain("name"), Node::plain("email")]);
        let l = n[2].fields.as_ref().unwrap();
        assert_eq!(l[0].fields.as_ref().unwrap(), &vec![Node::plain("name")]);
        assert_eq!(depth(&n), 2);
        assert_eq!(count(&n), 8);
    }

    #[test]
    fn options_limit_and_order() {
        let n = parse("order_line(limit=5, order='sequence desc, id'){name}").unwrap();
        assert_eq!(n[0].limit, Some(5));
        assert_eq!(n[0].order.as_deref(), Some("sequence desc, id"));
        let n = parse("order_line(order=name desc)").unwrap();
        assert_eq!(n[0].order.as_deref(), Some("name desc"));
        assert!(n[0].fields.is_none());
        let n = parse("tag_ids{}").unwrap();
        assert_eq!(n[0].fields, Some(vec![]));
    }

    #[test]
    fn errors_name_the_bad_part() {
        let e = parse("order_line{product_id{na-me}}").unwrap_err();
        assert_eq!(e.at, "order_line.product_id");
        assert!(
            e.to_string().starts_with("at order_line.product_id: "),
            "{e}"
        );
        let e = parse("order_line(limit=-1){name}").unwrap_err();
        assert_eq!(e.at, "order_line");
        assert!(e.message.contains("limit"));
        let e = parse("order_line(top=3)").unwrap_err();
        assert!(e.message.contains("unknown option"), "{e}");
        let e = parse("partner_id{name").unwrap_err();
        assert!(e.message.contains("'}'"), "{e}");
        let e = parse("partner_id}").unwrap_err();
        assert!(e.message.contains("unexpected"), "{e}");
        let e = parse("partner_id,partner_id{name}").unwrap_err();
        assert_eq!(e.at, "partner_id");
        assert!(parse("name,name").unwrap().len() == 1);
        let e = parse("x(order='a)").unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
        let e = parse("x(limit=1,limit=2)").unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn depth_is_bounded() {
        assert!(parse("a{b{c{d{e}}}}").is_ok());
        let e = parse("a{b{c{d{e{f}}}}}").unwrap_err();
        assert_eq!(e.at, "a.b.c.d.e");
        assert!(e.message.contains("deeper than 4"), "{e}");
        let spec = json!({"a": {"fields": {"b": {"fields": {"c": {"fields": {"d": {"fields": {"e": {"fields": {}}}}}}}}}}});
        let e = parse_specification(&spec).unwrap_err();
        assert_eq!(e.at, "a.b.c.d.e");
    }

    #[test]
    fn size_is_bounded() {
        let many: Vec<String> = (0..MAX_NODES + 1).map(|i| format!("f{i}")).collect();
        assert!(
            parse(&many.join(","))
                .unwrap_err()
                .message
                .contains("more than")
        );
        assert!(
            parse(&"a".repeat(MAX_TEXT + 1))
                .unwrap_err()
                .message
                .contains("longer")
        );
    }

    #[test]
    fn specification_like_web_read() {
        let spec = json!({
            "name": {},
            "partner_id": {"fields": {"display_name": {}, "email": {}}},
            "order_line": {"fields": {"product_id": {"fields": {"name": {}}}}, "limit": 3, "order": "id desc"},
            "tag_ids": {"limit": null, "order": ""}
        });
        let n = parse_specification(&spec).unwrap();
        let line = n.iter().find(|n| n.name == "order_line").unwrap();
        assert_eq!(line.limit, Some(3));
        assert_eq!(line.order.as_deref(), Some("id desc"));
        assert!(n.iter().find(|n| n.name == "tag_ids").unwrap().is_plain());
        for (bad, at, word) in [
            (json!([]), "", "object"),
            (json!({"name": true}), "name", "object"),
            (json!({"o": {"limit": -2}}), "o", "limit"),
            (json!({"o": {"limit": "2"}}), "o", "limit"),
            (json!({"o": {"order": 3}}), "o", "order"),
            (json!({"o": {"context": {}}}), "o", "context"),
            (json!({"o": {"domain": []}}), "o", "unknown key"),
            (json!({"o": {"fields": {"a b": {}}}}), "o", "field name"),
        ] {
            let e = parse_specification(&bad).unwrap_err();
            assert_eq!(e.at, at, "{bad}");
            assert!(e.message.contains(word), "{bad}: {e}");
        }
    }

    #[test]
    fn top_level_split_respects_braces_and_quotes() {
        assert_eq!(
            split_top_level("id, partner_id{name,email},l(order='a, b'){x,y},"),
            vec!["id", "partner_id{name,email}", "l(order='a, b'){x,y}"]
        );
        assert!(!is_nested("name"));
        assert!(is_nested("p{name}"));
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,8}"
    }

    fn tree(depth: u32) -> impl Strategy<Value = Vec<Node>> {
        let leaf = name().prop_map(|n| Node::plain(&n));
        let node = leaf.prop_recursive(depth, 24, 4, |inner| {
            (
                name(),
                proptest::option::of(proptest::collection::vec(inner, 0..4)),
                proptest::option::of(0u32..50),
                proptest::option::of("[a-z_]{1,6}( desc| asc)?(, ?[a-z_]{1,6})?"),
            )
                .prop_map(|(name, fields, limit, order)| Node {
                    name,
                    fields,
                    limit,
                    order,
                })
        });
        proptest::collection::vec(node, 0..5).prop_map(dedupe)
    }

    /// Trees as the parsers return them: names unique per level.
    fn dedupe(nodes: Vec<Node>) -> Vec<Node> {
        let mut out: Vec<Node> = vec![];
        for mut n in nodes {
            n.fields = n.fields.map(dedupe);
            if !out.iter().any(|o| o.name == n.name) {
                out.push(n);
            }
        }
        out
    }

    fn sorted(mut nodes: Vec<Node>) -> Vec<Node> {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for n in &mut nodes {
            n.fields = n.fields.take().map(sorted);
        }
        nodes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn text_round_trips(nodes in tree(MAX_DEPTH as u32)) {
            prop_assume!(depth(&nodes) <= MAX_DEPTH);
            let text = to_text(&nodes);
            prop_assert_eq!(parse(&text).unwrap(), nodes.clone());
            // one item per top-level piece gives the same list (the HTTP front splits that way)
            let pieces = split_top_level(&text);
            prop_assert_eq!(parse_fields(&pieces).unwrap(), nodes);
        }

        #[test]
        fn specification_round_trips(nodes in tree(MAX_DEPTH as u32)) {
            prop_assume!(depth(&nodes) <= MAX_DEPTH);
            let spec = to_specification(&nodes);
            // JSON objects do not keep their order: compare sorted trees
            prop_assert_eq!(sorted(parse_specification(&spec).unwrap()), sorted(nodes));
        }

        #[test]
        fn any_text_parses_or_fails_cleanly(text in "[a-z_{}(),='\" =0-9-]{0,80}") {
            if let Ok(nodes) = parse(&text) {
                prop_assert!(depth(&nodes) <= MAX_DEPTH);
                prop_assert!(count(&nodes) <= MAX_NODES);
                // what parses has a canonical text that parses to the same tree
                prop_assert_eq!(parse(&to_text(&nodes)).unwrap(), nodes);
            }
        }

        #[test]
        fn any_json_parses_or_fails_cleanly(text in "\\PC{0,60}") {
            if let Ok(v) = serde_json::from_str::<Value>(&text)
                && let Ok(nodes) = parse_specification(&v) {
                prop_assert!(depth(&nodes) <= MAX_DEPTH);
            }
        }

        #[test]
        fn deep_nesting_is_refused_not_overflowed(d in 5usize..3000) {
            let text = format!("{}x{}", "a{".repeat(d), "}".repeat(d));
            prop_assert!(parse(&text).is_err());
        }
    }
}
