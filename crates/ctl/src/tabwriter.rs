//! A port of Go's `text/tabwriter` with the "remember widths" extension
//! kubectl uses (github.com/liggitt/tabwriter). kubectl's column layout is
//! whatever this algorithm produces, including its quirks (column blocks end
//! at a line with fewer cells, a line with a single cell flushes), so minik8s
//! reproduces the algorithm instead of approximating it.

#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    /// Bytes of text in `buf`.
    size: usize,
    /// Width in characters (Go counts runes).
    width: usize,
    /// Terminated by a tab: the cell belongs to a column.
    htab: bool,
}

/// Aligns tab-separated cells into left-aligned, space-padded columns.
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    remember_widths: bool,
    buf: String,
    cell: Cell,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    maxwidths: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// `minwidth` and `padding` as in Go's `tabwriter.NewWriter`; padding is
    /// always with spaces. With `remember_widths` a column never gets
    /// narrower than in an earlier flush (kubectl's `get -w` relies on it).
    pub fn new(minwidth: usize, padding: usize, remember_widths: bool) -> TabWriter {
        let mut w = TabWriter {
            minwidth,
            padding,
            remember_widths,
            buf: String::new(),
            cell: Cell::default(),
            lines: Vec::new(),
            widths: Vec::new(),
            maxwidths: Vec::new(),
            out: String::new(),
        };
        w.reset();
        w
    }

    /// The writer kubectl's table printer uses (min width 6, padding 3,
    /// widths remembered across flushes).
    pub fn for_tables() -> TabWriter {
        TabWriter::new(6, 3, true)
    }

    /// The writer kubectl's `describe` uses (min width 0, padding 2).
    pub fn for_describe() -> TabWriter {
        TabWriter::new(0, 2, false)
    }

    /// Forget the widths of earlier flushes (a new table starts).
    pub fn forget_widths(&mut self) {
        self.maxwidths.clear();
    }

    pub fn write(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' | '\x0b' | '\n' | '\x0c' => {
                    let ncells = self.terminate_cell(ch == '\t');
                    if ch == '\n' || ch == '\x0c' {
                        self.lines.push(Vec::new());
                        if ch == '\x0c' || ncells == 1 {
                            // Go flushes on a line with a single cell: such a
                            // line ends every column block above it.
                            self.flush();
                        }
                    }
                }
                _ => {
                    self.buf.push(ch);
                    self.cell.size += ch.len_utf8();
                }
            }
        }
    }

    /// Format everything written so far into the output.
    pub fn flush(&mut self) {
        if self.cell.size > 0 {
            self.terminate_cell(false);
        }
        let n = self.lines.len();
        self.format(0, 0, n);
        self.reset();
    }

    /// The formatted text so far (flushed lines only).
    pub fn take_output(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    /// Flush and return all formatted text.
    pub fn finish(mut self) -> String {
        self.flush();
        self.out
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.cell = Cell::default();
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        let start = self.buf.len() - self.cell.size;
        self.cell.width = self.buf[start..].chars().count();
        self.cell.htab = htab;
        let line = self.lines.last_mut().expect("reset keeps one line");
        line.push(self.cell);
        self.cell = Cell::default();
        line.len()
    }

    fn format(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        let mut line0 = line0;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A column block starts at `this`: print what came before.
            pos = self.write_lines(pos, line0, this);
            line0 = this;

            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }

            if self.remember_widths {
                let depth = self.widths.len();
                if self.maxwidths.len() < depth {
                    let from = self.maxwidths.len();
                    self.maxwidths.extend_from_slice(&self.widths[from..]);
                }
                if self.maxwidths.len() == depth {
                    self.maxwidths.push(width);
                } else if self.maxwidths[depth] > width {
                    width = self.maxwidths[depth];
                } else {
                    self.maxwidths[depth] = width;
                }
            }

            self.widths.push(width);
            pos = self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
            // lines[this] has no cell in this column; Go's loop skips it too.
            this += 1;
        }
        self.write_lines(pos, line0, line1)
    }

    fn write_lines(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(&self.buf[pos..pos + c.size]);
                pos += c.size;
                if let Some(&cellw) = self.widths.get(j) {
                    let pad = cellw.saturating_sub(c.width);
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 == self.lines.len() {
                // The last line is the incomplete one: no newline yet.
                self.out.push_str(&self.buf[pos..pos + self.cell.size]);
                pos += self.cell.size;
            } else {
                self.out.push('\n');
            }
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> String {
        let mut w = TabWriter::for_tables();
        w.write(text);
        w.finish()
    }

    #[test]
    fn aligns_columns_with_three_spaces() {
        let out =
            table("NAME\tENDPOINTS\tAGE\nweb\t10.244.0.5:80,10.244.0.6:80,10.244.0.7:80\t30s\n");
        assert_eq!(
            out,
            "NAME   ENDPOINTS                                   AGE\n\
             web    10.244.0.5:80,10.244.0.6:80,10.244.0.7:80   30s\n"
        );
    }

    #[test]
    fn narrow_columns_get_the_minimum_width() {
        // "A" + 3 padding = 4 < min width 6.
        assert_eq!(table("A\tB\nx\ty\n"), "A     B\nx     y\n");
    }

    #[test]
    fn remembered_widths_keep_later_rows_aligned() {
        let mut w = TabWriter::for_tables();
        w.write("NAME\tAGE\nkubernetes\t2d\n");
        w.flush();
        w.write("web\t1s\n");
        w.flush();
        assert_eq!(
            w.take_output(),
            "NAME         AGE\nkubernetes   2d\nweb          1s\n"
        );
    }

    #[test]
    fn describe_columns_end_at_single_cell_lines() {
        let mut w = TabWriter::for_describe();
        w.write("Name:\tweb\nNamespace:\tdefault\nEvents:\n  Type\tReason\n  ----\t------\n");
        assert_eq!(
            w.finish(),
            "Name:       web\nNamespace:  default\nEvents:\n  Type  Reason\n  ----  ------\n"
        );
    }

    #[test]
    fn nested_column_blocks_follow_go() {
        // Lines with three cells form a block for column 1 of their own.
        let mut w = TabWriter::for_describe();
        w.write("Port:\t<unset>\t80/TCP\nTargetPort:\t80/TCP\nNodePort:\t<unset>\t30080/TCP\n");
        assert_eq!(
            w.finish(),
            "Port:        <unset>  80/TCP\nTargetPort:  80/TCP\nNodePort:    <unset>  30080/TCP\n"
        );
    }
}
