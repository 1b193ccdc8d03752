//! Reading the CLI's printed tables back, and checking that their spacing
//! is kubectl's: each column as wide as its widest cell plus three spaces
//! (at least six), the last column not padded, a blank line between the
//! tables of a multi-type `get`.

/// One printed table: the header's cells and each row's cells.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintedTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl PrintedTable {
    /// The row whose first cell is `name`.
    pub fn row(&self, name: &str) -> Option<&Vec<String>> {
        self.rows
            .iter()
            .find(|r| r.first().is_some_and(|c| c == name))
    }

    /// The cell of `row` under the column titled `column`.
    pub fn cell<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        let i = self
            .header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.header));
        &row[i]
    }
}

/// kubectl's tabwriter (minwidth 6, padding 3, pad char ' ') over cells.
pub fn render(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for line in lines {
        for (i, cell) in line.iter().enumerate() {
            if i + 1 < line.len() {
                widths[i] = widths[i].max((cell.chars().count() + 3).max(6));
            }
        }
    }
    let mut out = String::new();
    for line in lines {
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < line.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Split a CLI table output into its tables (separated by blank lines),
/// and assert each is laid out exactly as kubectl lays it out. Cells are
/// taken as the whitespace-separated words, so this only suits tables
/// whose cells have no spaces.
pub fn parse_tables(output: &str) -> Vec<PrintedTable> {
    let mut tables = Vec::new();
    for block in output.split("\n\n") {
        let text = if block.ends_with('\n') {
            block.to_string()
        } else {
            format!("{block}\n")
        };
        if text.trim().is_empty() {
            continue;
        }
        let lines: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        let cols = lines[0].len();
        for l in &lines {
            assert_eq!(
                l.len(),
                cols,
                "ragged table (a cell with spaces?):\n{output}"
            );
        }
        assert_eq!(
            render(&lines),
            text,
            "table spacing differs from kubectl's (expected left, printed right)"
        );
        tables.push(PrintedTable {
            header: lines[0].clone(),
            rows: lines[1..].to_vec(),
        });
    }
    tables
}

/// The one table of a single-type `get`.
pub fn parse_table(output: &str) -> PrintedTable {
    let mut t = parse_tables(output);
    assert_eq!(t.len(), 1, "expected one table:\n{output}");
    t.remove(0)
}

/// An AGE cell: apimachinery's HumanDuration of a recent time.
pub fn is_age(s: &str) -> bool {
    let units = ["s", "m", "h", "d", "y"];
    let mut rest = s;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        let unit = &rest[digits..digits + 1.min(rest.len() - digits)];
        if !units.contains(&unit) {
            return false;
        }
        rest = &rest[digits + 1..];
        parts += 1;
    }
    (1..=2).contains(&parts)
}

#[test]
fn renders_like_kubectl() {
    let lines: Vec<Vec<String>> = [
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        [
            "kubernetes",
            "ClusterIP",
            "10.96.0.1",
            "<none>",
            "443/TCP",
            "2d",
        ],
        [
            "web",
            "ClusterIP",
            "10.96.142.31",
            "<none>",
            "80/TCP",
            "10s",
        ],
    ]
    .iter()
    .map(|l| l.iter().map(|s| s.to_string()).collect())
    .collect();
    // The chapter's own text.
    assert_eq!(
        render(&lines),
        "NAME         TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE\n\
         kubernetes   ClusterIP   10.96.0.1      <none>        443/TCP   2d\n\
         web          ClusterIP   10.96.142.31   <none>        80/TCP    10s\n"
    );
    assert!(is_age("10s") && is_age("5m30s") && is_age("2d") && !is_age("") && !is_age("x1"));
}
