//! JSON ↔ component values, guided by a function's WIT types: lets the
//! local runner call any function of any category with a JSON input, and
//! print its result as JSON.
//!
//! Mapping: records are JSON objects (field names in kebab-case or
//! snake_case), variants `{"case": payload}` or `"case"` without payload,
//! enums strings, options `null` or the value, results `{"ok": ..}` /
//! `{"err": ..}`, flags lists of names, lists and tuples arrays.

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.get(&name.replace('-', "_")))
}

/// Converts `v` to a value of type `ty`.
pub fn to_val(ty: &Type, v: &Value) -> anyhow::Result<Val> {
    let int = |v: &Value| v.as_i64().context("expected an integer");
    let uint = |v: &Value| v.as_u64().context("expected a non-negative integer");
    Ok(match ty {
        Type::Bool => Val::Bool(v.as_bool().context("expected a boolean")?),
        Type::S8 => Val::S8(int(v)?.try_into()?),
        Type::U8 => Val::U8(uint(v)?.try_into()?),
        Type::S16 => Val::S16(int(v)?.try_into()?),
        Type::U16 => Val::U16(uint(v)?.try_into()?),
        Type::S32 => Val::S32(int(v)?.try_into()?),
        Type::U32 => Val::U32(uint(v)?.try_into()?),
        Type::S64 => Val::S64(int(v)?),
        Type::U64 => Val::U64(uint(v)?),
        Type::Float32 => Val::Float32(v.as_f64().context("expected a number")? as f32),
        Type::Float64 => Val::Float64(v.as_f64().context("expected a number")?),
        Type::Char => {
            let s = v.as_str().context("expected a one-character string")?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => bail!("expected a one-character string"),
            }
        }
        Type::String => Val::String(match v {
            Value::String(s) => s.clone(),
            // A `json` string may be given as the JSON value itself.
            other => other.to_string(),
        }),
        Type::List(l) => {
            let items = v.as_array().context("expected an array")?;
            let t = l.ty();
            Val::List(
                items
                    .iter()
                    .map(|i| to_val(&t, i))
                    .collect::<anyhow::Result<_>>()?,
            )
        }
        Type::Record(r) => {
            let obj = v.as_object().context("expected an object")?;
            let mut out = Vec::new();
            for f in r.fields() {
                let fv = field(obj, f.name).unwrap_or(&Value::Null);
                out.push((
                    f.name.to_string(),
                    to_val(&f.ty, fv).with_context(|| format!("field {}", f.name))?,
                ));
            }
            Val::Record(out)
        }
        Type::Tuple(t) => {
            let items = v.as_array().context("expected an array")?;
            let types: Vec<_> = t.types().collect();
            if items.len() != types.len() {
                bail!("expected {} items", types.len());
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .map(|(t, i)| to_val(t, i))
                    .collect::<anyhow::Result<_>>()?,
            )
        }
        Type::Variant(var) => {
            let (name, payload) = match v {
                Value::String(s) => (s.clone(), None),
                Value::Object(o) if o.len() == 1 => {
                    let (k, p) = o.iter().next().expect("one entry");
                    (k.clone(), Some(p))
                }
                _ => bail!("expected \"case\" or {{\"case\": payload}}"),
            };
            let case = var
                .cases()
                .find(|c| c.name == name || c.name == name.replace('_', "-"))
                .with_context(|| format!("no case {name}"))?;
            let payload = match (case.ty, payload) {
                (Some(t), Some(p)) => Some(Box::new(to_val(&t, p)?)),
                (Some(_), None) => bail!("case {name} needs a payload"),
                (None, _) => None,
            };
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(e) => {
            let s = v.as_str().context("expected a string")?;
            let name = e
                .names()
                .find(|n| *n == s || *n == s.replace('_', "-"))
                .with_context(|| format!("no enum case {s}"))?;
            Val::Enum(name.to_string())
        }
        Type::Option(o) => match v {
            Value::Null => Val::Option(None),
            other => Val::Option(Some(Box::new(to_val(&o.ty(), other)?))),
        },
        Type::Result(r) => {
            let obj = v
                .as_object()
                .context("expected {\"ok\": ..} or {\"err\": ..}")?;
            if let Some(ok) = obj.get("ok") {
                Val::Result(Ok(r
                    .ok()
                    .map(|t| to_val(&t, ok))
                    .transpose()?
                    .map(Box::new)))
            } else if let Some(err) = obj.get("err") {
                Val::Result(Err(r
                    .err()
                    .map(|t| to_val(&t, err))
                    .transpose()?
                    .map(Box::new)))
            } else {
                bail!("expected ok or err")
            }
        }
        Type::Flags(_) => Val::Flags(
            v.as_array()
                .context("expected an array of names")?
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
        ),
        other => bail!("type {other:?} is not supported by the runner"),
    })
}

/// Converts a component value to JSON.
pub fn to_json(v: &Val) -> Value {
    match v {
        Val::Bool(b) => Value::from(*b),
        Val::S8(n) => Value::from(*n),
        Val::U8(n) => Value::from(*n),
        Val::S16(n) => Value::from(*n),
        Val::U16(n) => Value::from(*n),
        Val::S32(n) => Value::from(*n),
        Val::U32(n) => Value::from(*n),
        Val::S64(n) => Value::from(*n),
        Val::U64(n) => Value::from(*n),
        Val::Float32(n) => Value::from(*n),
        Val::Float64(n) => Value::from(*n),
        Val::Char(c) => Value::from(c.to_string()),
        Val::String(s) => Value::from(s.clone()),
        Val::List(l) | Val::Tuple(l) | Val::FixedLengthList(l) => {
            Value::Array(l.iter().map(to_json).collect())
        }
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Val::Variant(name, None) | Val::Enum(name) => Value::from(name.clone()),
        Val::Variant(name, Some(p)) => {
            let mut m = Map::new();
            m.insert(name.clone(), to_json(p));
            Value::Object(m)
        }
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => to_json(v),
        Val::Result(Ok(v)) => serde_json::json!({ "ok": v.as_deref().map(to_json) }),
        Val::Result(Err(v)) => serde_json::json!({ "err": v.as_deref().map(to_json) }),
        Val::Flags(f) => Value::from(f.clone()),
        other => Value::from(format!("{other:?}")),
    }
}
