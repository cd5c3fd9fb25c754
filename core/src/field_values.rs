//! Values written to Odoo fields through the SQL API (`create` / `write`): each value is checked
//! against its field's type before it reaches a column, so a wrong value is an error naming the
//! field (never PostgreSQL's "invalid input syntax for type integer", and never a JSON object
//! stored as the text of a `char`), and shaped to what the column holds (Odoo's `False` is
//! "not set", a many2one given as `[id, name]` is its id).
//!
//! The rules follow Odoo 19's `convert_to_column` where it is strict and are stricter where it
//! would store whatever it is given: a `char` takes a string, not `str(dict)`; a selection takes
//! one of its keys (Odoo's `Selection.convert_to_cache` refuses others too).
use serde_json::Value;

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
}

impl ValueError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ValueError::Invalid(_) => "22023",
            ValueError::OutOfRange(_) => "22003",
            ValueError::TooLong(_) => "22001",
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
