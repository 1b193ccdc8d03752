//! YAML as kubectl writes it (`-o yaml`): JSON values through go-yaml v2's
//! encoder and libyaml's emitter rules — keys in go-yaml's order, sequences
//! not indented under their key, strings that would read back as another
//! type double-quoted, strings with indicators single-quoted, multi-line
//! strings as literal blocks, long lines folded at spaces after column 80.

mod scalar;

pub use scalar::key_order;
use scalar::{analyze, is_break, is_printable, number, resolves_to_string};
use serde_json::{Map, Value};

/// The column after which go-yaml folds long scalars at a space.
const BEST_WIDTH: usize = 80;

pub fn to_go_yaml(v: &Value) -> String {
    let mut e = Emitter::default();
    match v {
        Value::Object(m) if !m.is_empty() => e.mapping(m, 0),
        Value::Array(a) if !a.is_empty() => e.sequence(a, 0),
        other => {
            e.inline_value(other, 0);
            e.end_line();
        }
    }
    e.out
}

#[derive(Default)]
struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }

    fn newline(&mut self) {
        self.push_char('\n');
    }

    /// End the entry's line unless the value already did (a literal block
    /// ends with its own line break, as libyaml's `write_indent` knows).
    fn end_line(&mut self) {
        if self.column > 0 {
            self.newline();
        }
    }

    fn indent_to(&mut self, indent: usize) {
        while self.column < indent {
            self.push_char(' ');
        }
    }

    /// A block mapping whose keys start at `indent` (the first key at the
    /// current position, e.g. after `- `).
    fn mapping(&mut self, m: &Map<String, Value>, indent: usize) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| key_order(a, b));
        for (i, k) in keys.into_iter().enumerate() {
            if i > 0 {
                self.indent_to(indent);
            }
            self.scalar_string(k, indent, true);
            self.push_char(':');
            match &m[k] {
                Value::Object(child) if !child.is_empty() => {
                    self.newline();
                    self.indent_to(indent + 2);
                    self.mapping(child, indent + 2);
                }
                Value::Array(items) if !items.is_empty() => {
                    // go-yaml does not indent a sequence under its key.
                    self.newline();
                    self.indent_to(indent);
                    self.sequence(items, indent);
                }
                other => {
                    self.push_char(' ');
                    self.inline_value(other, indent);
                    self.end_line();
                }
            }
        }
    }

    fn sequence(&mut self, items: &[Value], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.indent_to(indent);
            }
            self.push("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(m, indent + 2),
                Value::Array(a) if !a.is_empty() => self.sequence(a, indent + 2),
                other => {
                    self.inline_value(other, indent);
                    self.end_line();
                }
            }
        }
    }

    /// A value on the current line; continuation lines of folded or literal
    /// scalars are indented two more than `indent`.
    fn inline_value(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => self.push(&number(n)),
            Value::String(s) => self.scalar_string(s, indent, false),
            Value::Object(_) => self.push("{}"),
            Value::Array(_) => self.push("[]"),
        }
    }

    fn scalar_string(&mut self, s: &str, indent: usize, is_key: bool) {
        let a = analyze(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if resolves_to_string(s) {
            Style::Plain
        } else {
            Style::DoubleQuoted
        };
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && is_key)) {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !a.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal && (!a.block_allowed || is_key) {
            style = Style::DoubleQuoted;
        }
        let allow_breaks = !is_key;
        let cont = indent + 2;
        match style {
            Style::Plain => self.write_plain(s, cont, allow_breaks),
            Style::SingleQuoted => self.write_single(s, cont, allow_breaks),
            Style::DoubleQuoted => self.write_double(s, cont, allow_breaks),
            Style::Literal => self.write_literal(s, cont),
        }
    }

    fn fold(&mut self, indent: usize) {
        self.newline();
        self.indent_to(indent);
    }

    fn write_plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.fold(indent);
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
    }

    fn write_single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push_char('\'');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.fold(indent);
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push_char('\'');
                }
                self.push_char(c);
                spaces = false;
            }
        }
        self.push_char('\'');
    }

    fn write_double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push_char('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.push_char('\\');
                let esc = match c {
                    '\0' => "0".to_string(),
                    '\x07' => "a".into(),
                    '\x08' => "b".into(),
                    '\t' => "t".into(),
                    '\n' => "n".into(),
                    '\x0b' => "v".into(),
                    '\x0c' => "f".into(),
                    '\r' => "r".into(),
                    '\x1b' => "e".into(),
                    '"' => "\"".into(),
                    '\\' => "\\".into(),
                    '\u{85}' => "N".into(),
                    '\u{A0}' => "_".into(),
                    '\u{2028}' => "L".into(),
                    '\u{2029}' => "P".into(),
                    c if (c as u32) <= 0xFF => format!("x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("u{:04X}", c as u32),
                    c => format!("U{:08X}", c as u32),
                };
                self.push(&esc);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.fold(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push_char('\\');
                    }
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
        self.push_char('"');
    }

    fn write_literal(&mut self, s: &str, indent: usize) {
        self.push_char('|');
        if s.starts_with(' ') || s.starts_with('\n') {
            self.push_char('2');
        }
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        if n == 0 || !is_break(chars[n - 1]) {
            self.push_char('-');
        } else if n == 1 || is_break(chars[n - 2]) {
            self.push_char('+');
        }
        self.newline();
        let mut at_line_start = true;
        for &c in &chars {
            if is_break(c) {
                self.newline();
                at_line_start = true;
            } else {
                if at_line_start {
                    self.indent_to(indent);
                    at_line_start = false;
                }
                self.push_char(c);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_a_service_like_kubectl() {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "36",
                         "creationTimestamp": "2026-11-26T23:01:10Z", "labels": {},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}\n"}},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "clusterIPs": ["10.96.0.1"],
                     "selector": {"app": "web"}, "type": "ClusterIP"},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            to_go_yaml(&svc),
            "apiVersion: v1\nkind: Service\nmetadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"a\":1}\n  \
             creationTimestamp: \"2026-11-26T23:01:10Z\"\n  labels: {}\n  name: web\n  namespace: default\n  resourceVersion: \"36\"\n\
             spec:\n  clusterIPs:\n  - 10.96.0.1\n  ports:\n  - port: 80\n    protocol: TCP\n    targetPort: 80\n  selector:\n    app: web\n  type: ClusterIP\n\
             status:\n  loadBalancer: {}\n"
        );
    }

    #[test]
    fn quotes_what_would_read_back_differently() {
        let q = |s: &str| to_go_yaml(&json!({"k": s}));
        assert_eq!(q(""), "k: \"\"\n");
        assert_eq!(q("yes"), "k: \"yes\"\n");
        assert_eq!(q("0x1F"), "k: \"0x1F\"\n");
        assert_eq!(q("08"), "k: \"08\"\n");
        assert_eq!(q("1.5e3"), "k: \"1.5e3\"\n");
        assert_eq!(q("2026-01-02"), "k: \"2026-01-02\"\n");
        assert_eq!(q("1:20"), "k: \"1:20\"\n");
        assert_eq!(q("10.96.0.1"), "k: 10.96.0.1\n");
        assert_eq!(q("80:30080/TCP"), "k: 80:30080/TCP\n");
        assert_eq!(q("<none>"), "k: <none>\n");
        assert_eq!(q("*"), "k: '*'\n");
        assert_eq!(q("a: b"), "k: 'a: b'\n");
        assert_eq!(q("it's"), "k: it's\n");
        assert_eq!(q("- x"), "k: '- x'\n");
        assert_eq!(q(" lead"), "k: ' lead'\n");
        assert_eq!(q("tab\there"), "k: \"tab\\there\"\n");
        assert_eq!(q("x\ny"), "k: |-\n  x\n  y\n");
    }

    #[test]
    fn folds_long_lines_at_spaces() {
        let long = "Back-off pulling image \"nginx:notexist\": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image";
        let out = to_go_yaml(&json!({"message": long}));
        assert_eq!(
            out,
            "message: 'Back-off pulling image \"nginx:notexist\": ErrImagePull: rpc error: code =\n  NotFound desc = failed to pull and unpack image'\n"
        );
    }

    #[test]
    fn sequences_of_maps_and_nested_sequences() {
        let v = json!({"items": [{"b": 1, "a": [1, 2]}, [], {}], "empty": []});
        assert_eq!(
            to_go_yaml(&v),
            "empty: []\nitems:\n- a:\n  - 1\n  - 2\n  b: 1\n- []\n- {}\n"
        );
    }

    #[test]
    fn key_order_follows_go_yaml() {
        let mut keys = vec!["b", "a_b", "aB", "a10", "a9", "A", "a"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, ["A", "a", "a_b", "a9", "a10", "aB", "b"]);
    }

    #[test]
    fn numbers_print_like_go() {
        assert_eq!(
            to_go_yaml(
                &json!({"a": 0.5, "b": 1e21, "c": -3, "d": true, "e": null, "f": 1234567.5, "g": 3.0})
            ),
            "a: 0.5\nb: 1e+21\nc: -3\nd: true\ne: null\nf: 1.2345675e+06\ng: 3\n"
        );
    }
}
