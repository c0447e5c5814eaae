//! Plain aligned tables for people; `-o json` is for scripts.

/// Renders rows under headers, columns padded to their widest cell, two spaces apart.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Renders one row per item, under headers.
pub fn render_each<T>(headers: &[&str], items: &[T], row: impl FnMut(&T) -> Vec<String>) -> String {
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    render(headers, &rows)
}

/// The cell of a missing value.
pub fn dash() -> String {
    "-".to_owned()
}

/// The value, or [`dash`] when there is none.
pub fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(dash, |v| v.to_string())
}

/// Renders `name: value` lines, names padded.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["1".to_owned(), "long-value".to_owned()],
            vec!["22".into(), "x".into()],
        ];
        assert_eq!(render(&["A", "B"], &rows), "A   B\n1   long-value\n22  x\n");
        assert_eq!(
            fields(&[("a", "1".into()), ("bbb", "2".into())]),
            "a:   1\nbbb: 2\n"
        );
    }
}
