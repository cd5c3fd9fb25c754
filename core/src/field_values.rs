//! Values written to Odoo fields through the SQL API (`create` / `write`): each value is checked
//! against its field's type before it reaches a column, so a wrong value is an error naming the
//! field (never PostgreSQL's "invalid input syntax for type integer", and never a JSON object
//! stored as the text of a `char`), and shaped to what the column holds (Odoo's `False` is
//! "not set", a many2one given as `[id, name]` is its id).
//!
//! The rules follow Odoo 19's `convert_to_column` where it is strict and are stricter where it
//! would store whatever it is given: a `char` takes a string, not `str(dict)`; a selection takes
//! one of its keys (Odoo's `Selection.convert_to_cache` refuses others too).
use crate::domain::FieldInfo;
use crate::odoo::Caller;
use serde_json::{Map, Value};

/// What a value is checked against: the field and, when the database knows them, the keys of a
/// selection (`ir_model_fields_selection`; `None` for a selection computed by a method) and the
/// `size` of a `char` (a `varchar(n)` column).
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec<'a> {
    pub model: &'a str,
    pub name: &'a str,
    pub ttype: &'a str,
    pub selection: Option<&'a [String]>,
    pub size: Option<usize>,
}

/// Why a value was refused; each kind has its SQLSTATE.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The value does not fit the field's type or its allowed values (22023).
    #[error("{0}")]
    Invalid(String),
    /// A number beyond what the column holds (22003).
    #[error("{0}")]
    OutOfRange(String),
    /// A string longer than the field's `size` (22001).
    #[error("{0}")]
    TooLong(String),
    /// A field the user may not write (its groups: 42501).
    #[error("{0}")]
    Forbidden(String),
}

impl ValueError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ValueError::Invalid(_) => "22023",
            ValueError::OutOfRange(_) => "22003",
            ValueError::TooLong(_) => "22001",
            ValueError::Forbidden(_) => "42501",
        }
    }
}

/// Longest part of a refused value quoted back in an error.
const SHOWN_MAX: usize = 60;

fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(SHOWN_MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

impl FieldSpec<'_> {
    fn invalid(&self, expected: &str, v: &Value) -> ValueError {
        ValueError::Invalid(format!(
            "field {}.{} ({}) expects {expected}, got {}",
            self.model,
            self.name,
            self.ttype,
            shown(v)
        ))
    }

    fn out_of_range(&self, v: &Value) -> ValueError {
        ValueError::OutOfRange(format!(
            "field {}.{} ({}): {} is out of range",
            self.model,
            self.name,
            self.ttype,
            shown(v)
        ))
    }

    fn text(&self, v: &Value) -> Result<Value, ValueError> {
        let Value::String(s) = v else {
            return Err(self.invalid("a string", v));
        };
        if s.contains('\0') {
            return Err(ValueError::Invalid(format!(
                "field {}.{}: text cannot contain the NUL character",
                self.model, self.name
            )));
        }
        if let Some(size) = self.size
            && size > 0
            && s.chars().count() > size
        {
            return Err(ValueError::TooLong(format!(
                "field {}.{} holds at most {size} characters, got {}",
                self.model,
                self.name,
                s.chars().count()
            )));
        }
        Ok(v.clone())
    }

    fn int32(&self, v: &Value) -> Result<i64, ValueError> {
        // a number in a string, as Odoo's int() takes it
        if let Value::String(s) = v {
            return match s.trim().parse::<i64>() {
                Ok(i) if i32::try_from(i).is_ok() => Ok(i),
                Ok(_) => Err(self.out_of_range(v)),
                Err(_) => Err(self.invalid("an integer", v)),
            };
        }
        if let Some(i) = v.as_i64() {
            return if i32::try_from(i).is_ok() {
                Ok(i)
            } else {
                Err(self.out_of_range(v))
            };
        }
        match v.as_f64() {
            // an integral number beyond i64 (or written with an exponent)
            Some(f) if v.is_number() && f.fract() == 0.0 => {
                if f.is_finite() && f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX) {
                    Ok(f as i64)
                } else {
                    Err(self.out_of_range(v))
                }
            }
            _ if v.is_number() && v.as_f64().is_some_and(f64::is_infinite) => {
                Err(self.out_of_range(v))
            }
            _ => Err(self.invalid("an integer", v)),
        }
    }
}

/// The value to give the column for `value`, the caller's value in Odoo's write format;
/// `Value::Null` means "not set". Relational fields stored elsewhere (x2many, binary) are not
/// handled here.
pub fn column_value(spec: &FieldSpec, value: &Value) -> Result<Value, ValueError> {
    // Odoo's False is "not set" for every type but boolean.
    if value.is_null() || (*value == Value::Bool(false) && spec.ttype != "boolean") {
        return Ok(Value::Null);
    }
    match spec.ttype {
        "boolean" => match value {
            Value::Bool(_) => Ok(value.clone()),
            other => Err(spec.invalid("true or false", other)),
        },
        "char" | "text" | "html" => spec.text(value),
        "selection" => {
            let v = spec.text(value)?;
            if let (Some(keys), Value::String(s)) = (spec.selection, &v)
                && !keys.is_empty()
                && !keys.iter().any(|k| k == s)
            {
                let mut allowed = keys.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
                if keys.len() > 20 {
                    allowed.push_str(", …");
                }
                return Err(ValueError::Invalid(format!(
                    "field {}.{}: {} is not one of its values ({allowed})",
                    spec.model,
                    spec.name,
                    shown(value)
                )));
            }
            Ok(v)
        }
        "integer" | "many2one_reference" => spec.int32(value).map(Value::from),
        "float" | "monetary" => match value {
            Value::Number(_) => match value.as_f64() {
                Some(f) if f.is_finite() => Ok(value.clone()),
                _ => Err(spec.out_of_range(value)),
            },
            // a number in a string, as Odoo's float() takes it
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::from(f)),
                Ok(_) => Err(spec.out_of_range(value)),
                Err(_) => Err(spec.invalid("a number", value)),
            },
            _ => Err(spec.invalid("a number", value)),
        },
        "date" => match value {
            Value::String(s) if is_date(s) => Ok(value.clone()),
            other => Err(spec.invalid("a date \"YYYY-MM-DD\"", other)),
        },
        "datetime" => match value {
            Value::String(s) if is_datetime(s) => Ok(value.clone()),
            other => Err(spec.invalid("a UTC date and time \"YYYY-MM-DD HH:MM:SS\"", other)),
        },
        "many2one" => {
            // [id, display name] as Odoo's read returns it
            let v = match value {
                Value::Array(a) if !a.is_empty() => &a[0],
                other => other,
            };
            match v.as_i64() {
                Some(id) if id > 0 && i32::try_from(id).is_ok() => Ok(Value::from(id)),
                Some(id) if id > 0 => Err(spec.out_of_range(v)),
                _ => Err(spec.invalid("a record id (a positive integer)", value)),
            }
        }
        "reference" => match value {
            Value::String(s)
                if s.split_once(',').is_some_and(|(m, id)| {
                    !m.is_empty() && id.parse::<i32>().is_ok_and(|i| i > 0)
                }) =>
            {
                Ok(value.clone())
            }
            other => Err(spec.invalid("a reference \"model,id\"", other)),
        },
        // json, properties and types without a rule: stored as given
        _ => Ok(value.clone()),
    }
}

/// The record id a shaped many2one value points to.
pub fn many2one_id(shaped: &Value) -> Option<i64> {
    shaped.as_i64()
}

fn digits(s: &str) -> Option<u32> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// `YYYY-MM-DD`, a real calendar day.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&s[0..4]), digits(&s[5..7]), digits(&s[8..10]))
    else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// `YYYY-MM-DD`, optionally followed by ` HH:MM[:SS[.ffffff]]` (or `T` as the separator).
pub fn is_datetime(s: &str) -> bool {
    if s.len() < 10 || !s.is_char_boundary(10) || !is_date(&s[..10]) {
        return false;
    }
    let rest = &s[10..];
    if rest.is_empty() {
        return true;
    }
    let Some(time) = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('T')) else {
        return false;
    };
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (time, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || f.len() > 6 || digits(f).is_none())
    {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || (frac.is_some() && parts.len() != 3) {
        return false;
    }
    let limits = [23, 59, 59];
    parts
        .iter()
        .zip(limits)
        .all(|(p, max)| p.len() == 2 && digits(p).is_some_and(|n| n <= max))
}

/// Set by the ORM on every record, never by the caller.
pub const MAGIC: &[&str] = &["id", "create_uid", "create_date", "write_uid", "write_date"];

/// What the write path knows of one field of the model.
pub struct WriteField<'a> {
    pub info: &'a FieldInfo,
    /// A column of the model's table holds it.
    pub has_column: bool,
    pub readonly: bool,
    /// Groups allowed to access it; empty = everyone.
    pub groups: &'a [i32],
}

/// A many2many command (Odoo's `Command`), the ones the SQL path applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `[6, 0, ids]`: replace the set.
    Replace(Vec<i64>),
    /// `[4, id]`: link.
    Link(i64),
    /// `[3, id]`: unlink (the relation only, as Odoo does).
    Unlink(i64),
    /// `[5]`: clear.
    Clear,
}

/// The caller's values split into plain columns (a JSON object for `jsonb_populate_record`) and
/// many2many commands to apply once the row exists.
#[derive(Debug, Default)]
pub struct Values {
    pub columns: Map<String, Value>,
    pub many2many: Vec<(String, Vec<Command>)>,
    /// Company-dependent columns among `columns` (values `{company_id: value}`).
    pub company_dependent: Vec<String>,
    /// Many2one values the caller must check exist: (field, comodel, id).
    pub targets: Vec<(String, String, i64)>,
}

fn invalid(msg: String) -> ValueError {
    ValueError::Invalid(msg)
}

fn ids(v: &Value, what: &str) -> Result<Vec<i64>, ValueError> {
    v.as_array()
        .ok_or_else(|| invalid(format!("{what}: expected a list of ids")))?
        .iter()
        .map(|x| {
            x.as_i64()
                .filter(|i| *i > 0)
                .ok_or_else(|| invalid(format!("{what}: ids are positive integers")))
        })
        .collect()
}

/// A many2many value: a command list, or a plain list of ids ("replace with these").
pub fn commands(field: &str, v: &Value) -> Result<Vec<Command>, ValueError> {
    let list = v.as_array().ok_or_else(|| {
        invalid(format!(
            "{field}: many2many values are command lists like [[6, 0, [ids]]]"
        ))
    })?;
    if list.iter().all(Value::is_i64) {
        return Ok(vec![Command::Replace(ids(v, field)?)]);
    }
    list.iter()
        .map(|c| {
            let c = c
                .as_array()
                .ok_or_else(|| invalid(format!("{field}: each command is a list")))?;
            let code = c.first().and_then(Value::as_i64).unwrap_or(-1);
            let arg = |i: usize, form: &str| {
                c.get(i)
                    .and_then(Value::as_i64)
                    .filter(|x| *x > 0)
                    .ok_or_else(|| invalid(format!("{field}: {form} needs an id")))
            };
            Ok(match code {
                6 => Command::Replace(ids(c.get(2).unwrap_or(&Value::Null), field)?),
                4 => Command::Link(arg(1, "[4, id]")?),
                3 => Command::Unlink(arg(1, "[3, id]")?),
                5 => Command::Clear,
                _ => {
                    return Err(invalid(format!(
                        "{field}: unsupported many2many command {code}: use [6, 0, ids], [4, id], [3, id] or [5]"
                    )));
                }
            })
        })
        .collect()
}

/// A field's `size` (0: none) and selection keys, as `ir_model_fields` records them.
pub type Extras = (usize, Vec<String>);

/// Check and shape the caller's `vals` for `model`: only stored fields the user may write.
/// `field(name)` gives what is known of a field; `extras(name)` its `size` and selection keys
/// (`ir_model_fields`), where it has them.
pub fn shape<'m>(
    model: &str,
    field: &dyn Fn(&str) -> Option<WriteField<'m>>,
    extras: &dyn Fn(&str) -> Option<Extras>,
    writer: &Caller,
    vals: &Value,
) -> Result<Values, ValueError> {
    let obj = vals
        .as_object()
        .ok_or_else(|| invalid("vals must be a JSON object of field values".into()))?;
    let mut out = Values::default();
    for (name, value) in obj {
        let Some(f) = field(name) else {
            let shown: String = name.chars().take(64).collect();
            return Err(invalid(format!("unknown field {model}.{shown}")));
        };
        if MAGIC.contains(&name.as_str()) {
            return Err(invalid(format!(
                "field {model}.{name} is set by the gateway, not by the caller"
            )));
        }
        if !crate::fields::visible(f.groups, writer.groups, writer.superuser) {
            return Err(ValueError::Forbidden(format!(
                "user {} may not write field {model}.{name}",
                writer.uid
            )));
        }
        if f.readonly {
            return Err(invalid(format!(
                "field {model}.{name} is read-only (computed or system-managed): it can only change through Odoo"
            )));
        }
        let info = f.info;
        match info.ttype.as_str() {
            "many2many" => out.many2many.push((name.clone(), commands(name, value)?)),
            "one2many" => {
                return Err(invalid(format!(
                    "field {model}.{name} is a one2many: write the inverse many2one on the other model instead"
                )));
            }
            "binary" => {
                return Err(invalid(format!(
                    "field {model}.{name} is stored as an attachment: not writable here"
                )));
            }
            _ if !f.has_column => {
                return Err(invalid(format!(
                    "field {model}.{name} is not stored in the database"
                )));
            }
            _ => {
                let extra = extras(name);
                let spec = FieldSpec {
                    model,
                    name,
                    ttype: &info.ttype,
                    selection: extra.as_ref().map(|(_, keys)| keys.as_slice()),
                    size: extra.as_ref().map(|(n, _)| *n),
                };
                let v = column_value(&spec, value)?;
                if info.ttype == "many2one"
                    && let (Some(id), Some(comodel)) = (many2one_id(&v), info.relation.as_deref())
                {
                    out.targets.push((name.clone(), comodel.to_string(), id));
                }
                let v = if info.translate {
                    match v {
                        Value::String(s) => {
                            let mut t = Map::new();
                            t.insert("en_US".into(), Value::String(s.clone()));
                            t.insert(writer.lang.to_string(), Value::String(s));
                            Value::Object(t)
                        }
                        Value::Null => Value::Null,
                        other => {
                            return Err(invalid(format!(
                                "field {model}.{name} is translated: give a string (stored for en_US and {}) , got {other}",
                                writer.lang
                            )));
                        }
                    }
                } else if info.company_dependent {
                    // The current company's value only; `write` merges it into the others (a
                    // null removes this company's value, as Odoo does).
                    out.company_dependent.push(name.clone());
                    let mut t = Map::new();
                    t.insert(writer.company_id.to_string(), v);
                    Value::Object(t)
                } else {
                    v
                };
                out.columns.insert(name.clone(), v);
            }
        }
    }
    Ok(out)
}

/// Defaults Odoo's Python gives every new record that the database cannot know: `active` is
/// true, and a new partner is a contact shared with no internal user (`partner_share`), which
/// the multi-company record rule of res.partner depends on. `has_column(name)`: the model's
/// table has that column.
pub fn orm_defaults(
    model: &str,
    has_column: &dyn Fn(&str) -> bool,
    columns: &mut Map<String, Value>,
) {
    if has_column("active") && !columns.contains_key("active") {
        columns.insert("active".into(), Value::Bool(true));
    }
    if model == "res.partner" {
        if has_column("partner_share") {
            columns.insert("partner_share".into(), Value::Bool(true));
        }
        if has_column("type") && columns.get("type").is_none_or(Value::is_null) {
            columns.insert("type".into(), Value::String("contact".into()));
        }
    }
}

/// Whether a write of `columns` changes what res.partner's stored computed fields
/// (`commercial_partner_id`, `complete_name`, `commercial_company_name`) depend on: `name`,
/// `parent_id`, `is_company` (Odoo's `@api.depends` of their compute methods).
pub fn partner_recompute_needed(model: &str, columns: &Map<String, Value>) -> bool {
    model == "res.partner"
        && ["name", "parent_id", "is_company"]
            .iter()
            .any(|f| columns.contains_key(*f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec<'a>(ttype: &'a str) -> FieldSpec<'a> {
        FieldSpec {
            model: "res.partner",
            name: "f",
            ttype,
            selection: None,
            size: None,
        }
    }

    /// res.partner-like fields for `shape`: name (translated), ref, state (a selection),
    /// parent_id, category_id (many2many), child_ids, image, comment_html (no column),
    /// barcode (company-dependent), secret (groups 7), display (read-only).
    fn shape_fields() -> Vec<(FieldInfo, bool, bool, Vec<i32>)> {
        let mut name = FieldInfo::new("name", "char");
        name.translate = true;
        let mut parent = FieldInfo::new("parent_id", "many2one");
        parent.relation = Some("res.partner".into());
        let mut cats = FieldInfo::new("category_id", "many2many");
        cats.relation = Some("res.partner.category".into());
        let mut barcode = FieldInfo::new("barcode", "char");
        barcode.company_dependent = true;
        vec![
            (name, true, false, vec![]),
            (FieldInfo::new("ref", "char"), true, false, vec![]),
            (FieldInfo::new("state", "selection"), true, false, vec![]),
            (parent, true, false, vec![]),
            (cats, false, false, vec![]),
            (
                FieldInfo::new("child_ids", "one2many"),
                false,
                false,
                vec![],
            ),
            (FieldInfo::new("image", "binary"), false, false, vec![]),
            (FieldInfo::new("comment_html", "html"), false, false, vec![]),
            (barcode, true, false, vec![]),
            (FieldInfo::new("secret", "char"), true, false, vec![7]),
            (FieldInfo::new("display", "char"), true, true, vec![]),
            (
                FieldInfo::new("write_date", "datetime"),
                true,
                false,
                vec![],
            ),
        ]
    }

    fn shaped(vals: Value, groups: &[i64]) -> Result<Values, ValueError> {
        let fields = shape_fields();
        let field = |n: &str| {
            fields.iter().find(|f| f.0.name == n).map(|f| WriteField {
                info: &f.0,
                has_column: f.1,
                readonly: f.2,
                groups: &f.3,
            })
        };
        let extras =
            |n: &str| (n == "state").then(|| (0, vec!["draft".to_string(), "done".to_string()]));
        let writer = Caller {
            uid: 5,
            superuser: false,
            groups,
            lang: "fr_FR",
            company_id: 3,
        };
        shape("res.partner", &field, &extras, &writer, &vals)
    }

    fn refusal(r: Result<Values, ValueError>) -> (&'static str, String) {
        match r {
            Err(e) => (e.sqlstate(), e.to_string()),
            Ok(v) => panic!("expected a refusal, got {v:?}"),
        }
    }

    #[test]
    fn shape_splits_columns_commands_and_targets() {
        let v = shaped(
            json!({"name": "Ada", "ref": false, "state": "done", "parent_id": [9, "X"],
                   "category_id": [[4, 2], [3, 1], [5], [6, 0, [7, 8]]], "barcode": "B1"}),
            &[],
        )
        .unwrap();
        assert_eq!(v.columns["name"], json!({"en_US": "Ada", "fr_FR": "Ada"}));
        assert_eq!(v.columns["ref"], Value::Null);
        assert_eq!(v.columns["state"], json!("done"));
        assert_eq!(v.columns["parent_id"], json!(9));
        assert_eq!(v.columns["barcode"], json!({"3": "B1"}));
        assert_eq!(v.company_dependent, ["barcode"]);
        assert_eq!(
            v.targets,
            [("parent_id".to_string(), "res.partner".to_string(), 9)]
        );
        assert_eq!(
            v.many2many,
            [(
                "category_id".to_string(),
                vec![
                    Command::Link(2),
                    Command::Unlink(1),
                    Command::Clear,
                    Command::Replace(vec![7, 8])
                ]
            )]
        );
        // A plain list of ids replaces the set.
        let v = shaped(json!({"category_id": [3, 4]}), &[]).unwrap();
        assert_eq!(v.many2many[0].1, [Command::Replace(vec![3, 4])]);
    }

    #[test]
    fn shape_refuses_what_odoo_would_not_store() {
        let cases = [
            (json!([1]), "22023", "vals must be a JSON object"),
            (
                json!({"nope": 1}),
                "22023",
                "unknown field res.partner.nope",
            ),
            (
                json!({"write_date": "2024-01-01 00:00:00"}),
                "22023",
                "set by the gateway",
            ),
            (
                json!({"secret": "x"}),
                "42501",
                "user 5 may not write field res.partner.secret",
            ),
            (json!({"display": "x"}), "22023", "read-only"),
            (json!({"child_ids": [1]}), "22023", "one2many"),
            (json!({"image": "aGk="}), "22023", "attachment"),
            (json!({"comment_html": "<p/>"}), "22023", "not stored"),
            (json!({"state": "gone"}), "22023", "state"),
            (json!({"name": 5}), "22023", "name"),
            (
                json!({"category_id": [[9, 1]]}),
                "22023",
                "unsupported many2many command 9",
            ),
            (
                json!({"category_id": [[4]]}),
                "22023",
                "[4, id] needs an id",
            ),
            (
                json!({"category_id": [[6, 0, [0]]]}),
                "22023",
                "ids are positive integers",
            ),
            (json!({"category_id": "x"}), "22023", "command lists"),
        ];
        for (vals, state, text) in cases {
            let (got_state, got) = refusal(shaped(vals.clone(), &[]));
            assert_eq!(got_state, state, "{vals}: {got}");
            assert!(got.contains(text), "{vals}: {got}");
        }
        // The field's group lets its members write it.
        assert!(shaped(json!({"secret": "x"}), &[7]).is_ok());
    }

    #[test]
    fn orm_defaults_are_odoos() {
        let all = |_: &str| true;
        let mut c = Map::new();
        orm_defaults("res.partner", &all, &mut c);
        assert_eq!(
            Value::Object(c.clone()),
            json!({"active": true, "partner_share": true, "type": "contact"})
        );
        // What the caller gave stays; a model without the column gets nothing.
        let mut c = Map::new();
        c.insert("active".into(), json!(false));
        c.insert("type".into(), json!("invoice"));
        orm_defaults("res.partner", &|n| n != "partner_share", &mut c);
        assert_eq!(
            Value::Object(c),
            json!({"active": false, "type": "invoice"})
        );
        let mut c = Map::new();
        orm_defaults("res.partner.category", &|n| n == "active", &mut c);
        assert_eq!(Value::Object(c), json!({"active": true}));
        let mut c = Map::new();
        orm_defaults("res.country", &|_| false, &mut c);
        assert!(c.is_empty());
    }

    #[test]
    fn partner_recompute_follows_its_dependencies() {
        let cols = |v: Value| v.as_object().unwrap().clone();
        assert!(partner_recompute_needed(
            "res.partner",
            &cols(json!({"name": "x"}))
        ));
        assert!(partner_recompute_needed(
            "res.partner",
            &cols(json!({"parent_id": 3, "ref": "r"}))
        ));
        assert!(!partner_recompute_needed(
            "res.partner",
            &cols(json!({"ref": "r"}))
        ));
        assert!(!partner_recompute_needed(
            "res.users",
            &cols(json!({"name": "x"}))
        ));
    }

    fn invalid(r: Result<Value, ValueError>) -> String {
        match r {
            Err(ValueError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn false_and_null_mean_not_set_except_for_booleans() {
        for t in ["char", "integer", "many2one", "date", "selection", "float"] {
            assert_eq!(
                column_value(&spec(t), &json!(false)),
                Ok(Value::Null),
                "{t}"
            );
            assert_eq!(column_value(&spec(t), &Value::Null), Ok(Value::Null), "{t}");
        }
        assert_eq!(
            column_value(&spec("boolean"), &json!(false)),
            Ok(json!(false))
        );
        assert_eq!(
            column_value(&spec("boolean"), &json!(true)),
            Ok(json!(true))
        );
        invalid(column_value(&spec("boolean"), &json!("yes")));
    }

    #[test]
    fn text_fields_take_strings_only() {
        assert_eq!(column_value(&spec("char"), &json!("a")), Ok(json!("a")));
        // the review's `email = {"a": 1}`: refused, naming the field
        let m = invalid(column_value(
            &FieldSpec {
                name: "email",
                ..spec("char")
            },
            &json!({"a": 1}),
        ));
        assert!(m.contains("res.partner.email"), "{m}");
        assert!(m.contains("a string"), "{m}");
        invalid(column_value(&spec("text"), &json!(42)));
        invalid(column_value(&spec("html"), &json!(["x"])));
        invalid(column_value(&spec("char"), &json!("a\u{0}b")));
    }

    #[test]
    fn char_size_is_enforced_in_characters() {
        let s = FieldSpec {
            size: Some(3),
            ..spec("char")
        };
        assert_eq!(column_value(&s, &json!("été")), Ok(json!("été")));
        let e = column_value(&s, &json!("abcd")).unwrap_err();
        assert_eq!(e.sqlstate(), "22001");
        assert!(e.to_string().contains("at most 3"), "{e}");
    }

    #[test]
    fn selections_take_one_of_their_keys_when_known() {
        let keys = vec!["contact".to_string(), "invoice".to_string()];
        let s = FieldSpec {
            name: "type",
            selection: Some(&keys),
            ..spec("selection")
        };
        assert_eq!(column_value(&s, &json!("invoice")), Ok(json!("invoice")));
        let m = invalid(column_value(&s, &json!("evil")));
        assert!(m.contains("res.partner.type"), "{m}");
        assert!(m.contains("contact, invoice"), "{m}");
        invalid(column_value(&s, &json!("<script>")));
        invalid(column_value(&s, &json!(1)));
        // a selection computed by a method: any string
        assert_eq!(
            column_value(&spec("selection"), &json!("fr_FR")),
            Ok(json!("fr_FR"))
        );
    }

    #[test]
    fn integers_name_the_field_and_keep_22003_for_range() {
        let s = FieldSpec {
            name: "color",
            ..spec("integer")
        };
        assert_eq!(column_value(&s, &json!(7)), Ok(json!(7)));
        assert_eq!(column_value(&s, &json!(7.0)), Ok(json!(7)));
        let m = invalid(column_value(&s, &json!("abc")));
        assert!(
            m.contains("res.partner.color") && m.contains("an integer"),
            "{m}"
        );
        invalid(column_value(&s, &json!(1.5)));
        invalid(column_value(&s, &json!(true)));
        for big in [
            json!(2147483648i64),
            json!(1.7976931348623157e308),
            json!(-1e20),
        ] {
            assert_eq!(
                column_value(&s, &big).unwrap_err().sqlstate(),
                "22003",
                "{big}"
            );
        }
        let huge: Value = serde_json::from_str("99999999999999999999").unwrap();
        assert_eq!(column_value(&s, &huge).unwrap_err().sqlstate(), "22003");
    }

    #[test]
    fn floats_dates_and_references() {
        assert_eq!(column_value(&spec("float"), &json!(1.5)), Ok(json!(1.5)));
        assert_eq!(column_value(&spec("monetary"), &json!(3)), Ok(json!(3)));
        // numbers in strings, as Odoo's int()/float() take them
        assert_eq!(column_value(&spec("float"), &json!("1.5")), Ok(json!(1.5)));
        assert_eq!(
            column_value(&spec("integer"), &json!(" 42 ")),
            Ok(json!(42))
        );
        invalid(column_value(&spec("float"), &json!("1,5")));
        invalid(column_value(&spec("float"), &json!(true)));
        assert_eq!(
            column_value(&spec("float"), &json!("inf"))
                .unwrap_err()
                .sqlstate(),
            "22003"
        );
        assert_eq!(
            column_value(&spec("integer"), &json!("99999999999"))
                .unwrap_err()
                .sqlstate(),
            "22003"
        );
        assert_eq!(
            column_value(&spec("date"), &json!("2024-02-29")),
            Ok(json!("2024-02-29"))
        );
        invalid(column_value(&spec("date"), &json!("2023-02-29")));
        invalid(column_value(&spec("date"), &json!("tomorrow")));
        for ok in [
            "2024-01-01 10:00:00",
            "2024-01-01T10:00",
            "2024-01-01",
            "2024-01-01 23:59:59.123456",
        ] {
            assert!(column_value(&spec("datetime"), &json!(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "2024-01-01 24:00:00",
            "2024-01-01 10",
            "2024-01-01x",
            "2024-01-01 10:00:00.",
            "é024-01-01",
        ] {
            invalid(column_value(&spec("datetime"), &json!(bad)));
        }
        assert!(column_value(&spec("reference"), &json!("res.partner,3")).is_ok());
        invalid(column_value(&spec("reference"), &json!("res.partner")));
        assert_eq!(
            column_value(&spec("json"), &json!({"a": 1})),
            Ok(json!({"a": 1}))
        );
    }

    #[test]
    fn many2one_takes_an_id_or_a_read_pair() {
        let s = FieldSpec {
            name: "parent_id",
            ..spec("many2one")
        };
        assert_eq!(column_value(&s, &json!(5)), Ok(json!(5)));
        assert_eq!(column_value(&s, &json!([5, "Azure"])), Ok(json!(5)));
        assert_eq!(many2one_id(&json!(5)), Some(5));
        let m = invalid(column_value(&s, &json!("five")));
        assert!(
            m.contains("res.partner.parent_id") && m.contains("record id"),
            "{m}"
        );
        invalid(column_value(&s, &json!(0)));
        invalid(column_value(&s, &json!(-3)));
        assert_eq!(
            column_value(&s, &json!(1i64 << 40)).unwrap_err().sqlstate(),
            "22003"
        );
    }

    #[test]
    fn long_values_are_clipped_in_errors() {
        let big = "x".repeat(900_000);
        let m = invalid(column_value(&spec("integer"), &json!(big)));
        assert!(m.len() < 300, "{}", m.len());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]
        #[test]
        fn never_panics_and_accepted_values_have_the_column_shape(
            t in proptest::sample::select(vec!["boolean", "char", "selection", "integer", "float", "date", "datetime", "many2one", "reference", "json"]),
            text in "\\PC{0,24}",
            n in proptest::num::i64::ANY,
            f in proptest::num::f64::ANY,
            which in 0usize..6,
        ) {
            let v = match which {
                0 => json!(text),
                1 => json!(n),
                2 => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
                3 => json!([n, text]),
                4 => json!({"k": text}),
                _ => json!(true),
            };
            if let Ok(out) = column_value(&spec(t), &v) && !out.is_null() {
                match t {
                    "integer" => proptest::prop_assert!(out.as_i64().is_some_and(|i| i32::try_from(i).is_ok())),
                    "many2one" => proptest::prop_assert!(out.as_i64().is_some_and(|i| i > 0)),
                    "char" | "selection" | "date" | "datetime" => proptest::prop_assert!(out.is_string()),
                    "boolean" => proptest::prop_assert!(out.is_boolean()),
                    "float" => proptest::prop_assert!(out.as_f64().is_some_and(f64::is_finite)),
                    _ => {}
                }
            }
        }
    }
}
