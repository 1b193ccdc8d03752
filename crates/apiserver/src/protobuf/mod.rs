//! Request bodies in Kubernetes' protobuf encoding
//! (`application/vnd.kubernetes.protobuf`), which kubectl's typed clients
//! send (`kubectl create namespace|deployment|service`), decoded into the
//! JSON the rest of the server works with.
//!
//! The wire format is `k8s\0` + a `runtime.Unknown` message whose `raw`
//! field holds the object. `schema.txt` (written by `generate_schema.py`
//! from Kubernetes' Go types) gives each field's number, JSON name, type,
//! pointer-ness and omitempty, so the JSON is what Go's encoder would
//! write for the same object.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

const MAGIC: &[u8] = b"k8s\0";

/// The Content-Type of a protobuf body.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

#[derive(Debug, Clone, PartialEq)]
enum FieldType {
    String,
    Int32,
    Int64,
    Bool,
    Time,
    MicroTime,
    IntOrString,
    Quantity,
    RawJson,
    Map(Box<FieldType>),
    Message(String),
}

#[derive(Debug, Clone)]
struct Field {
    number: u64,
    name: String,
    ty: FieldType,
    repeated: bool,
    pointer: bool,
    omitempty: bool,
}

fn parse_type(word: &str) -> FieldType {
    match word {
        "string" => FieldType::String,
        "int32" => FieldType::Int32,
        "int64" => FieldType::Int64,
        "bool" => FieldType::Bool,
        "time" => FieldType::Time,
        "microtime" => FieldType::MicroTime,
        "intorstring" => FieldType::IntOrString,
        "quantity" => FieldType::Quantity,
        "rawjson" => FieldType::RawJson,
        w if w.starts_with("map:") => FieldType::Map(Box::new(parse_type(&w[4..]))),
        message => FieldType::Message(message.to_string()),
    }
}

/// Message name -> fields, read once from `schema.txt`.
fn schema() -> &'static HashMap<String, Vec<Field>> {
    static SCHEMA: OnceLock<HashMap<String, Vec<Field>>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut messages: HashMap<String, Vec<Field>> = HashMap::new();
        let mut current = String::new();
        for line in include_str!("schema.txt").lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["message", name] => {
                    current = name.to_string();
                    messages.entry(current.clone()).or_default();
                }
                [number, name, ty, flags @ ..] => {
                    let field = Field {
                        number: number.parse().expect("schema.txt: field number"),
                        name: name.to_string(),
                        ty: parse_type(ty),
                        repeated: flags.contains(&"rep"),
                        pointer: flags.contains(&"ptr"),
                        omitempty: flags.contains(&"omitempty"),
                    };
                    messages.entry(current.clone()).or_default().push(field);
                }
                _ => {}
            }
        }
        messages
    })
}

/// Whether bodies of `kind` can be decoded.
pub fn knows(kind: &str) -> bool {
    schema().contains_key(kind)
}

/// Decode a protobuf body holding an object of `kind` into JSON.
pub fn decode(kind: &str, bytes: &[u8]) -> Result<Value, String> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the k8s envelope")?;
    let mut reader = Reader::new(body);
    let (mut api_version, mut type_kind, mut raw) = (String::new(), String::new(), None);
    while let Some((number, wire)) = reader.key()? {
        match (number, wire) {
            (1, 2) => {
                let mut meta = Reader::new(reader.bytes()?);
                while let Some((n, w)) = meta.key()? {
                    match (n, w) {
                        (1, 2) => api_version = meta.string()?,
                        (2, 2) => type_kind = meta.string()?,
                        _ => meta.skip(w)?,
                    }
                }
            }
            (2, 2) => raw = Some(reader.bytes()?),
            _ => reader.skip(wire)?,
        }
    }
    let mut obj = decode_message(kind, raw.unwrap_or_default())?;
    if !api_version.is_empty() {
        obj["apiVersion"] = json!(api_version);
    }
    if !type_kind.is_empty() {
        obj["kind"] = json!(type_kind);
    }
    Ok(obj)
}

fn decode_message(name: &str, bytes: &[u8]) -> Result<Value, String> {
    let fields = schema()
        .get(name)
        .ok_or_else(|| format!("no protobuf layout for {name}"))?;
    let mut values: Vec<Option<Value>> = vec![None; fields.len()];
    let mut reader = Reader::new(bytes);
    while let Some((number, wire)) = reader.key()? {
        let Some(i) = fields.iter().position(|f| f.number == number) else {
            reader.skip(wire)?;
            continue;
        };
        let field = &fields[i];
        if field.repeated && wire == 2 && is_varint(&field.ty) {
            // A packed list of numbers.
            let mut packed = Reader::new(reader.bytes()?);
            while !packed.done() {
                let v = scalar(&field.ty, packed.varint()?);
                push(&mut values[i], v);
            }
            continue;
        }
        match &field.ty {
            FieldType::Map(value_type) => {
                let (key, value) = map_entry(value_type, reader.bytes()?)?;
                let map = values[i].get_or_insert_with(|| json!({}));
                map[key] = value;
            }
            ty => {
                let value = read_value(ty, wire, &mut reader)?;
                if field.repeated {
                    push(&mut values[i], value);
                } else {
                    values[i] = Some(value);
                }
            }
        }
    }
    let mut out = Map::new();
    for (field, value) in fields.iter().zip(values) {
        let Some(value) = value else { continue };
        if omitted(field, &value) {
            continue;
        }
        out.insert(field.name.clone(), value);
    }
    Ok(Value::Object(out))
}

/// Go's omitempty, for a field that was on the wire (the Go encoder writes
/// every non-pointer field, so zero values arrive too).
fn omitted(field: &Field, value: &Value) -> bool {
    if field.pointer {
        return false;
    }
    if value.is_null() {
        // A zero time.
        return true;
    }
    if matches!(field.ty, FieldType::Message(_)) && !field.repeated {
        // Go never omits a struct value.
        return false;
    }
    field.omitempty
        && match value {
            Value::String(s) => s.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Bool(b) => !b,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Null => true,
        }
}

fn push(slot: &mut Option<Value>, value: Value) {
    match slot.get_or_insert_with(|| json!([])) {
        Value::Array(items) => items.push(value),
        other => *other = json!([value]),
    }
}

fn is_varint(ty: &FieldType) -> bool {
    matches!(ty, FieldType::Int32 | FieldType::Int64 | FieldType::Bool)
}

fn scalar(ty: &FieldType, v: u64) -> Value {
    match ty {
        FieldType::Int32 => json!(v as i64 as i32),
        FieldType::Bool => json!(v != 0),
        _ => json!(v as i64),
    }
}

fn read_value(ty: &FieldType, wire: u8, reader: &mut Reader<'_>) -> Result<Value, String> {
    if is_varint(ty) {
        if wire != 0 {
            return Err(format!("expected a number, found wire type {wire}"));
        }
        return Ok(scalar(ty, reader.varint()?));
    }
    if wire != 2 {
        return Err(format!(
            "expected a length-delimited field, found wire type {wire}"
        ));
    }
    let bytes = reader.bytes()?;
    Ok(match ty {
        FieldType::String => json!(utf8(bytes)?),
        FieldType::Message(name) => decode_message(name, bytes)?,
        FieldType::Time => time(bytes, false)?,
        FieldType::MicroTime => time(bytes, true)?,
        FieldType::IntOrString => int_or_string(bytes)?,
        FieldType::Quantity => {
            let mut r = Reader::new(bytes);
            let mut text = String::new();
            while let Some((n, w)) = r.key()? {
                match (n, w) {
                    (1, 2) => text = r.string()?,
                    _ => r.skip(w)?,
                }
            }
            json!(text)
        }
        FieldType::RawJson => {
            let mut r = Reader::new(bytes);
            let mut raw: &[u8] = b"null";
            while let Some((n, w)) = r.key()? {
                match (n, w) {
                    (1, 2) => raw = r.bytes()?,
                    _ => r.skip(w)?,
                }
            }
            serde_json::from_slice(raw).map_err(|e| format!("embedded JSON: {e}"))?
        }
        _ => unreachable!("numbers are read above"),
    })
}

/// A `map<string, V>` entry: key 1, value 2.
fn map_entry(value_type: &FieldType, bytes: &[u8]) -> Result<(String, Value), String> {
    let mut r = Reader::new(bytes);
    let (mut key, mut value) = (String::new(), None);
    while let Some((n, w)) = r.key()? {
        match n {
            1 => key = r.string()?,
            2 => value = Some(read_value(value_type, w, &mut r)?),
            _ => r.skip(w)?,
        }
    }
    let value = value.unwrap_or_else(|| match value_type {
        FieldType::String | FieldType::Quantity => json!(""),
        _ => Value::Null,
    });
    Ok((key, value))
}

/// `metav1.Time` / `MicroTime`: seconds 1, nanos 2; the zero time is null.
fn time(bytes: &[u8], micro: bool) -> Result<Value, String> {
    let mut r = Reader::new(bytes);
    let (mut seconds, mut nanos) = (0i64, 0i64);
    while let Some((n, w)) = r.key()? {
        match (n, w) {
            (1, 0) => seconds = r.varint()? as i64,
            (2, 0) => nanos = r.varint()? as i64,
            _ => r.skip(w)?,
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let t = jiff::Timestamp::new(seconds, nanos as i32).map_err(|e| format!("time: {e}"))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(json!(t.strftime(format).to_string()))
}

/// `intstr.IntOrString`: type 1 (0 int, 1 string), intVal 2, strVal 3.
fn int_or_string(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(bytes);
    let (mut is_string, mut int_val, mut str_val) = (false, 0i32, String::new());
    while let Some((n, w)) = r.key()? {
        match (n, w) {
            (1, 0) => is_string = r.varint()? == 1,
            (2, 0) => int_val = r.varint()? as i64 as i32,
            (3, 2) => str_val = r.string()?,
            _ => r.skip(w)?,
        }
    }
    Ok(if is_string {
        json!(str_val)
    } else {
        json!(int_val)
    })
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "a string field is not UTF-8".to_string())
}

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("truncated protobuf varint")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("protobuf varint longer than 10 bytes".into())
    }

    /// The next field's number and wire type; `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, String> {
        if self.done() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()? as usize;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let end = end.ok_or("truncated protobuf field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn string(&mut self) -> Result<String, String> {
        let bytes = self.bytes()?;
        utf8(bytes).map(str::to_string)
    }

    fn skip(&mut self, wire: u8) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.bytes().map(drop),
            5 => self.advance(4),
            other => Err(format!("unsupported protobuf wire type {other}")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.pos + n > self.buf.len() {
            return Err("truncated protobuf field".into());
        }
        self.pos += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
