//! One event per record, per webhook, per transaction: how a later change of a record merges
//! into the event its transaction already queued for it.
//!
//! The capture trigger stores, per event, `data` as JSON text (see `src/sql/webhooks.sql`):
//! a create holds the record's non-NULL payload values (`{"id": 7, "name": "A"}`), a write
//! holds `{"r": record, "c": [changed fields], "p": {field: previous value}}`. This module
//! merges a write (one UPDATE statement's view of a record) into the pending create or write
//! of the same transaction. Unlinks need no data and are merged in SQL (create + unlink: no
//! event; write + unlink: unlink).
//!
//! Values are never re-serialised: they are kept as the exact JSON text PostgreSQL wrote (so
//! numbers keep their digits), and "unchanged" means the same text from the same serialiser.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Why stored event data could not be merged (it was not written by the capture functions).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("webhook event data is not valid JSON: {0}")]
    Json(String),
    #[error("cannot merge into a webhook event of action {0:?}")]
    Action(String),
    #[error("a write merged into an event needs the record's values")]
    NoRecord,
}

#[derive(Deserialize)]
struct WriteData<'a> {
    #[serde(borrow)]
    r: &'a RawValue,
    c: Vec<String>,
    #[serde(borrow)]
    p: HashMap<String, &'a RawValue>,
}

fn json_err(e: serde_json::Error) -> MergeError {
    MergeError::Json(e.to_string())
}

/// A JSON string, escaped exactly as PostgreSQL's `escape_json` escapes it (so the event's text
/// equals what `jsonb_build_object` would give).
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The data of a write event: `{"r":<record>,"c":[<changed names>],"p":{<name>:<value before>}}`,
/// `push_record` writing the record and `push_before` each field's previous value.
pub fn push_write<N: AsRef<str>, T>(
    out: &mut String,
    push_record: impl FnOnce(&mut String),
    changed: &[(N, T)],
    mut push_before: impl FnMut(&mut String, &T),
) {
    out.push_str("{\"r\":");
    push_record(out);
    out.push_str(",\"c\":[");
    for (i, (name, _)) in changed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, name.as_ref());
    }
    out.push_str("],\"p\":{");
    for (i, (name, before)) in changed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, name.as_ref());
        out.push(':');
        push_before(out, before);
    }
    out.push_str("}}");
}

/// Merge the write `new_write` (`{"r","c","p"}`, None when the statement changed no watched
/// field) into the pending event (`prev_action`, `prev_data`) of the same record and
/// transaction. `new_row` is the record after the statement (its non-NULL payload values),
/// needed only when `new_write` is None. `position` gives a field's column number, to list
/// `changed` in the table's column order.
///
/// Returns the merged event's data: for a create, the record as it is now; for a write, the
/// record now with `changed`/`previous` covering the whole transaction (a field's previous value
/// is the one before the transaction's first change of it; a field set back to that value is
/// no longer changed). `None`: the merged write changes nothing (the event goes).
pub fn merge_write(
    prev_action: &str,
    prev_data: &str,
    new_write: Option<&str>,
    new_row: Option<&str>,
    position: &dyn Fn(&str) -> i32,
) -> Result<Option<String>, MergeError> {
    let new: Option<WriteData> = new_write
        .map(serde_json::from_str::<WriteData>)
        .transpose()
        .map_err(json_err)?;
    let record: &str = match (&new, new_row) {
        (Some(w), _) => w.r.get(),
        (None, Some(row)) => {
            // Validate it: it is spliced into the result as is.
            serde_json::from_str::<&RawValue>(row).map_err(json_err)?;
            row
        }
        (None, None) => return Err(MergeError::NoRecord),
    };
    match prev_action {
        "create" => Ok(Some(record.to_string())),
        "write" => {
            let prev: WriteData = serde_json::from_str(prev_data).map_err(json_err)?;
            let now: HashMap<String, &RawValue> = serde_json::from_str(record).map_err(json_err)?;
            // The value before the transaction: the earliest previous value seen.
            let mut previous: HashMap<&str, &RawValue> =
                prev.p.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let mut fields: Vec<&str> = prev.c.iter().map(String::as_str).collect();
            if let Some(w) = &new {
                for f in &w.c {
                    if !fields.contains(&f.as_str()) {
                        fields.push(f);
                    }
                }
                for (k, v) in &w.p {
                    previous.entry(k.as_str()).or_insert(*v);
                }
            }
            let null = "null";
            let mut changed: Vec<(&str, &str)> = fields
                .into_iter()
                .filter_map(|f| {
                    let before = previous.get(f).map_or(null, |v| v.get());
                    let after = now.get(f).map_or(null, |v| v.get());
                    (before != after).then_some((f, before))
                })
                .collect();
            if changed.is_empty() {
                return Ok(None);
            }
            changed.sort_by(|a, b| position(a.0).cmp(&position(b.0)).then(a.0.cmp(b.0)));
            let mut out = String::with_capacity(record.len() + 64);
            push_write(
                &mut out,
                |o| o.push_str(record),
                &changed,
                |o, before| o.push_str(before),
            );
            Ok(Some(out))
        }
        other => Err(MergeError::Action(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn order(f: &str) -> i32 {
        ["id", "name", "email", "phone", "ref", "amount"]
            .iter()
            .position(|x| *x == f)
            .map_or(i32::MAX, |p| p as i32)
    }

    fn merged(
        prev_action: &str,
        prev: Value,
        new: Option<Value>,
        row: Option<Value>,
    ) -> Option<Value> {
        let prev = prev.to_string();
        let new = new.map(|v| v.to_string());
        let row = row.map(|v| v.to_string());
        merge_write(prev_action, &prev, new.as_deref(), row.as_deref(), &order)
            .unwrap()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn a_create_takes_the_record_as_the_write_left_it() {
        let got = merged(
            "create",
            json!({"id": 1, "name": "A"}),
            Some(
                json!({"r": {"id": 1, "name": "A", "email": "a@x"}, "c": ["email"], "p": {"email": null}}),
            ),
            None,
        );
        assert_eq!(got, Some(json!({"id": 1, "name": "A", "email": "a@x"})));
        // A write that changed no watched field still refreshes the record (write_date...).
        let got = merged(
            "create",
            json!({"id": 1}),
            None,
            Some(json!({"id": 1, "write_uid": 2})),
        );
        assert_eq!(got, Some(json!({"id": 1, "write_uid": 2})));
    }

    #[test]
    fn writes_cover_the_whole_transaction() {
        let first =
            json!({"r": {"id": 1, "name": "B", "email": "a@x"}, "c": ["name"], "p": {"name": "A"}});
        let second = json!({"r": {"id": 1, "name": "C", "phone": "1"}, "c": ["name", "email", "phone"],
                            "p": {"name": "B", "email": "a@x", "phone": null}});
        let got = merged("write", first, Some(second), None).unwrap();
        assert_eq!(got["r"], json!({"id": 1, "name": "C", "phone": "1"}));
        assert_eq!(got["c"], json!(["name", "email", "phone"]));
        assert_eq!(
            got["p"],
            json!({"name": "A", "email": "a@x", "phone": null})
        );
    }

    #[test]
    fn changed_fields_keep_the_column_order() {
        let first = json!({"r": {"id": 1, "ref": "R"}, "c": ["ref"], "p": {"ref": null}});
        let second =
            json!({"r": {"id": 1, "ref": "R", "name": "N"}, "c": ["name"], "p": {"name": null}});
        let got = merged("write", first, Some(second), None).unwrap();
        assert_eq!(got["c"], json!(["name", "ref"]));
    }

    #[test]
    fn a_field_set_back_is_no_change_and_nothing_left_is_no_event() {
        let first = json!({"r": {"id": 1, "name": "B", "email": "e"}, "c": ["name", "email"], "p": {"name": "A", "email": null}});
        let second =
            json!({"r": {"id": 1, "name": "A", "email": "e"}, "c": ["name"], "p": {"name": "B"}});
        let got = merged("write", first.clone(), Some(second), None).unwrap();
        assert_eq!(got["c"], json!(["email"]));
        assert_eq!(got["p"], json!({"email": null}));
        let back = json!({"r": {"id": 1, "name": "A"}, "c": ["name", "email"], "p": {"name": "B", "email": "e"}});
        assert_eq!(merged("write", first, Some(back), None), None);
    }

    #[test]
    fn numbers_keep_their_digits() {
        let prev = r#"{"r":{"id":1,"amount":1.50},"c":["amount"],"p":{"amount":12345678901234567890.123}}"#;
        let new = r#"{"r":{"id":1,"amount":2.000},"c":["amount"],"p":{"amount":1.50}}"#;
        let out = merge_write("write", prev, Some(new), None, &order)
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            r#"{"r":{"id":1,"amount":2.000},"c":["amount"],"p":{"amount":12345678901234567890.123}}"#
        );
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        assert!(matches!(
            merge_write("write", "{", None, Some("{}"), &order),
            Err(MergeError::Json(_))
        ));
        assert!(matches!(
            merge_write("create", "{}", Some("[1]"), None, &order),
            Err(MergeError::Json(_))
        ));
        assert_eq!(
            merge_write("create", "{}", None, None, &order),
            Err(MergeError::NoRecord)
        );
        assert!(matches!(
            merge_write("unlink", "{}", None, Some("{}"), &order),
            Err(MergeError::Action(_))
        ));
        assert!(matches!(
            merge_write("create", "{}", None, Some("{x"), &order),
            Err(MergeError::Json(_))
        ));
    }

    proptest! {
        /// Any sequence of writes merged one by one: `changed` is exactly the fields whose final
        /// value differs from the value before the first write, `previous` has those values.
        #[test]
        fn merging_equals_the_net_change(
            start in proptest::collection::vec(proptest::option::of(0u8..3), 4),
            steps in proptest::collection::vec(proptest::collection::vec(proptest::option::of(0u8..3), 4), 1..6),
        ) {
            let names = ["name", "email", "phone", "ref"];
            let row = |vals: &[Option<u8>]| -> Value {
                let mut m = serde_json::Map::new();
                m.insert("id".into(), json!(1));
                for (n, v) in names.iter().zip(vals) {
                    if let Some(v) = v { m.insert((*n).into(), json!(v)); }
                }
                Value::Object(m)
            };
            let val = |v: Option<u8>| v.map_or(Value::Null, |x| json!(x));
            // One statement's write data, as _webhook_write_json makes it (None: nothing changed).
            let write = |old: &[Option<u8>], new: &[Option<u8>]| -> Option<Value> {
                let c: Vec<&str> = names.iter().zip(old.iter().zip(new)).filter(|(_, (a, b))| a != b).map(|(n, _)| *n).collect();
                if c.is_empty() { return None; }
                let p: serde_json::Map<String, Value> = names.iter().zip(old.iter().zip(new))
                    .filter(|(_, (a, b))| a != b).map(|(n, (a, _))| ((*n).to_string(), val(*a))).collect();
                Some(json!({"r": row(new), "c": c, "p": p}))
            };
            let mut pending: Option<Value> = None;
            let mut current = start.clone();
            for s in &steps {
                let w = write(&current, s);
                pending = match (&pending, w) {
                    (None, w) => w,
                    (Some(p), w) => merged("write", p.clone(), w, Some(row(s))),
                };
                current = s.clone();
            }
            let net = write(&start, &current);
            prop_assert_eq!(pending, net);
        }
    }

    proptest! {
        /// The escaper writes what PostgreSQL's escape_json writes, which JSON parsers read back.
        #[test]
        fn escaped_strings_read_back(s in "\\PC*|[\\x00-\\x1f\"\\\\]*") {
            let mut out = String::new();
            push_json_string(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
