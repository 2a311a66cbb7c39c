//! Parsers of the vendor tools' outputs, one module per tool, and the pieces they share: numbered lines,
//! values with units and `N/A`, and the box-drawn tables most of these tools print.
//!
//! The parsers read what the tools print for people, so they key on column names, never on positions: the
//! same tool moves columns between versions (npu-smi 20.x vs 24.x, cnmon 4.x vs 5.x, mx-smi 2.1 vs 2.2).

pub mod cnmon;
pub mod ixsmi;
pub mod mthreads_gmi;
pub mod mx_smi;
pub mod npu_smi;
pub mod nvidia_smi;
pub mod rocm_smi;
pub mod topology;
pub mod xpu_smi;

use crate::device::{Device, ParseError, Probe};
use std::collections::HashMap;

/// A parse problem at a line.
pub(crate) fn error(tool: &'static str, line: usize, text: &str, problem: &str) -> ParseError {
    ParseError {
        tool,
        line,
        text: text.trim_end().to_string(),
        problem: problem.to_string(),
    }
}

/// The number at the start of a value (`32C`, `0%`, `67.03 W`, `0x1F` is not one); `None` for `N/A`, `NA`,
/// `-` and the like.
pub(crate) fn num(s: &str) -> Option<f64> {
    let s = s.trim().trim_start_matches('[');
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (c == '-' && i == 0)))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().ok()
}

/// A whole number (see [`num`]).
pub(crate) fn int(s: &str) -> Option<u64> {
    num(s).filter(|v| *v >= 0.0).map(|v| v as u64)
}

/// `used/total` with units and `N/A` on either side.
pub(crate) fn ratio(s: &str) -> Option<(Option<f64>, Option<f64>)> {
    let s = s.replace("N/A", "NA");
    let (a, b) = s.split_once('/')?;
    Some((num(a), num(b)))
}

/// Units a tool prints apart from their number.
const UNITS: &[&str] = &["W", "MiB", "MB", "GB", "GiB", "C", "%", "MHz", "fps"];

/// The values in a table cell: `0    / 0` becomes `0/0`, `30 W/ 150 W` becomes `30W/150W`, `0 %` becomes
/// `0%`, so that a cell has as many values as its header has names.
pub(crate) fn tokens(cell: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    for t in cell.split_whitespace() {
        if t == "N/A" {
            raw.push(t.to_string());
            continue;
        }
        for (i, part) in t.split('/').enumerate() {
            if i > 0 {
                raw.push("/".into());
            }
            if !part.is_empty() {
                raw.push(part.to_string());
            }
        }
    }
    let mut united: Vec<String> = Vec::new();
    for t in raw {
        let after_number = united
            .last()
            .is_some_and(|p| p.ends_with(|c: char| c.is_ascii_digit()) || p == "N/A");
        if UNITS.contains(&t.as_str()) && after_number {
            united.last_mut().expect("checked").push_str(&t);
        } else {
            united.push(t);
        }
    }
    // A lone `/` joins two amounts (`0/0`, `N/A/N/A`); between other words it is a value of its own (cnmon
    // prints `/` for "no virtual function").
    let amount = |t: &str| t.starts_with(|c: char| c.is_ascii_digit()) || t.starts_with("N/A");
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < united.len() {
        let t = &united[i];
        let joins = t == "/"
            && out.last().is_some_and(|p| amount(p))
            && united.get(i + 1).is_some_and(|n| amount(n));
        if joins {
            let last = out.last_mut().expect("checked");
            last.push('/');
            last.push_str(&united[i + 1]);
            i += 2;
        } else {
            out.push(t.clone());
            i += 1;
        }
    }
    out
}

/// The cells of a `| a | b |` row, untrimmed; `None` for a line that is not a row.
pub(crate) fn row_cells(line: &str) -> Option<Vec<&str>> {
    let t = line.trim();
    let inner = t.strip_prefix('|')?;
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').collect())
}

/// Whether a line is a table rule (`+----+`, `|====|`, `-----`).
pub(crate) fn is_rule(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| matches!(c, '+' | '-' | '=' | '|'))
}

/// Column names of a header cell, with multi-word names kept whole (`Compute M.`).
fn names(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in cell.split_whitespace() {
        if w == "M."
            && let Some(p) = out.last_mut()
        {
            p.push_str(" M.");
            continue;
        }
        out.push(w.to_string());
    }
    out
}

/// One device's record in a box table: column name → value.
pub(crate) type Record = HashMap<String, String>;

/// A box table: the header rows' column names per cell, then each record's rows, with line numbers.
pub(crate) struct BoxTable {
    /// Per header row, per cell, the names.
    header: Vec<Vec<Vec<String>>>,
}

/// Whether a column holds a product name, which may contain spaces (`MetaX C500`, `Iluvatar BI-V150`).
fn is_name(column: &str) -> bool {
    column.eq_ignore_ascii_case("name")
}

impl BoxTable {
    /// The header made of these rows.
    pub(crate) fn new(rows: &[&str]) -> BoxTable {
        BoxTable {
            header: rows
                .iter()
                .map(|r| {
                    row_cells(r)
                        .unwrap_or_default()
                        .into_iter()
                        .map(names)
                        .collect()
                })
                .collect(),
        }
    }

    /// Rows per record.
    pub(crate) fn height(&self) -> usize {
        self.header.len()
    }

    /// A record from its rows (one per header row): names and values paired cell by cell. A cell with more
    /// values than names gives the surplus to its name column, or is an error.
    pub(crate) fn record(
        &self,
        tool: &'static str,
        rows: &[(usize, &str)],
    ) -> Result<Record, ParseError> {
        let mut rec = Record::new();
        for ((n, line), header) in rows.iter().zip(&self.header) {
            let cells =
                row_cells(line).ok_or_else(|| error(tool, *n, line, "expected a table row"))?;
            for (cell, names) in cells.iter().zip(header) {
                let mut values = tokens(cell);
                if values.is_empty() {
                    continue;
                }
                if values.len() > names.len() {
                    let Some(at) = names.iter().position(|c| is_name(c)) else {
                        return Err(error(
                            tool,
                            *n,
                            line,
                            &format!(
                                "{} values under the {} columns {}",
                                values.len(),
                                names.len(),
                                names.join(", ")
                            ),
                        ));
                    };
                    let extra = values.len() - names.len();
                    let joined = values[at..=at + extra].join(" ");
                    values.splice(at..=at + extra, [joined]);
                }
                for (name, value) in names.iter().zip(values) {
                    rec.entry(name.clone()).or_insert(value);
                }
            }
        }
        Ok(rec)
    }
}

/// `key : value` lines (npu-smi's `-t` views), with continuation lines (an empty key) joined to the value
/// above; each with its line number.
pub(crate) fn key_values(text: &str) -> Vec<(usize, String, String)> {
    let mut out: Vec<(usize, String, String)> = Vec::new();
    for (n, line) in numbered(text) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            if let Some(last) = out.last_mut() {
                last.2.push_str("; ");
                last.2.push_str(v);
            }
            continue;
        }
        out.push((n, k.to_string(), v.to_string()));
    }
    out
}

/// Columns of a plain-text table, split at runs of two or more spaces or at tabs.
pub(crate) fn columns(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in line.split('\t') {
        let mut rest = part;
        while let Some(i) = rest.find("  ") {
            let head = rest[..i].trim();
            if !head.is_empty() {
                out.push(head);
            }
            rest = rest[i..].trim_start();
        }
        let tail = rest.trim();
        if !tail.is_empty() {
            out.push(tail);
        }
    }
    out
}

/// Numbered lines (1-based).
pub(crate) fn numbered(text: &str) -> Vec<(usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect()
}

/// The records of the first box table in `lines`: its header is the rows between the rule above and the
/// first `===` rule; its records are runs of rows separated by rules, up to a blank line or the next table.
/// Rows that do not make a record are errors; the good records are still returned.
pub(crate) fn box_records(
    tool: &'static str,
    lines: &[(usize, &str)],
) -> (Vec<(usize, Record)>, Vec<ParseError>) {
    let mut errors = Vec::new();
    let Some(eq) = lines.iter().position(|(_, l)| {
        let t = l.trim();
        is_rule(t) && t.contains("===")
    }) else {
        errors.push(error(
            tool,
            0,
            "",
            "no table header (no `===` rule) in the output",
        ));
        return (Vec::new(), errors);
    };
    let top = lines[..eq]
        .iter()
        .rposition(|(_, l)| is_rule(l))
        .map_or(0, |i| i + 1);
    let header: Vec<&str> = lines[top..eq].iter().map(|(_, l)| *l).collect();
    let table = BoxTable::new(&header);
    let mut records = Vec::new();
    let mut block: Vec<(usize, &str)> = Vec::new();
    let mut flush = |block: &mut Vec<(usize, &str)>, errors: &mut Vec<ParseError>| {
        if block.is_empty() {
            return;
        }
        if block.len() != table.height() {
            let (n, l) = block[0];
            errors.push(error(
                tool,
                n,
                l,
                &format!(
                    "a record of {} rows where the header has {}",
                    block.len(),
                    table.height()
                ),
            ));
        } else {
            match table.record(tool, block) {
                Ok(r) => records.push((block[0].0, r)),
                Err(e) => errors.push(e),
            }
        }
        block.clear();
    };
    for &(n, l) in &lines[eq + 1..] {
        // A blank line or the processes table ends the devices.
        if l.trim().is_empty() || l.to_ascii_lowercase().contains("process") {
            break;
        }
        if is_rule(l) {
            flush(&mut block, &mut errors);
            continue;
        }
        block.push((n, l));
    }
    flush(&mut block, &mut errors);
    (records, errors)
}

/// The devices of a box table with the columns most vendor tools share (`Name`, `Bus-Id`, `Temp`,
/// `Pwr:Usage/Cap` or `Power`, `Memory-Usage`, and the utilization column `util`), numbered by column
/// `index`; `extra` reads the tool's own columns. A record without a device number is an error at its line.
pub(crate) fn box_devices(
    tool: &'static str,
    text: &str,
    index: &str,
    util: &str,
    mut extra: impl FnMut(&Record, &mut Device),
) -> Probe {
    let lines = numbered(text);
    let (records, mut errors) = box_records(tool, &lines);
    let mut devices = Vec::new();
    for (line, r) in records {
        let get = |k: &str| r.get(k).map(String::as_str);
        let Some(i) = get(index).and_then(int) else {
            let text = lines.get(line - 1).map_or("", |l| l.1);
            errors.push(error(tool, line, text, &format!("no {index} number")));
            continue;
        };
        let mut d = Device::new(i as u32);
        d.name = get("Name").or(get("NAME")).map(str::to_string);
        d.bus_id = get("Bus-Id").or(get("Bus-id")).map(str::to_string);
        d.utilization = get(util).and_then(num);
        d.temperature_c = get("Temp").and_then(num);
        d.power_w = get("Pwr:Usage/Cap")
            .and_then(ratio)
            .and_then(|r| r.0)
            .or_else(|| get("Power").and_then(num));
        if let Some((used, total)) = get("Memory-Usage").and_then(ratio) {
            d.memory_used_mib = used.map(|v| v as u64);
            d.memory_total_mib = total.map(|v| v as u64);
        }
        extra(&r, &mut d);
        devices.push(d);
    }
    Probe {
        devices,
        errors,
        domains: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_one_value_per_column() {
        assert_eq!(
            tokens(" 101.8       43                0    / 0  "),
            ["101.8", "43", "0/0"]
        );
        assert_eq!(
            tokens("  0%   32C         30 W/ 150 W "),
            ["0%", "32C", "30W/150W"]
        );
        assert_eq!(tokens("     0 MiB/ 23308 MiB "), ["0MiB/23308MiB"]);
        assert_eq!(
            tokens(" 0%   32C   P0    N/A / N/A    "),
            ["0%", "32C", "P0", "N/A/N/A"]
        );
        assert_eq!(tokens("     0 % "), ["0%"]);
        assert_eq!(
            tokens(" 0     /   MLU370-X4    v1.1.6 "),
            ["0", "/", "MLU370-X4", "v1.1.6"]
        );
        assert_eq!(tokens(" 0 / 32768 MB "), ["0/32768MB"]);
        assert_eq!(tokens(" 10240 MiB/1048576 MiB "), ["10240MiB/1048576MiB"]);
        assert_eq!(ratio("N/A/N/A"), Some((None, None)));
        assert_eq!(ratio("30W/150W"), Some((Some(30.0), Some(150.0))));
        assert_eq!(num("[N/A]"), None);
        assert_eq!(num("-"), None);
        assert_eq!(num("49.0C"), Some(49.0));
    }
}
