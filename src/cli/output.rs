//! Small helpers for human output: sizes, tables and a progress line on stderr.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::audit::AuditProgress;

/// Print rows as left-aligned columns (the last column is not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 == cols {
                l.push_str(c);
            } else {
                l.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                l.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

/// A progress line on stderr, redrawn a few times a second while an audit runs,
/// only when stderr is a terminal. Dropping the guard clears the line.
pub struct ProgressLine {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressLine {
    /// Start drawing `progress` (no-op when stderr is not a terminal).
    pub fn start(progress: Arc<AuditProgress>, what: &'static str) -> ProgressLine {
        if !std::io::stderr().is_terminal() {
            return ProgressLine {
                stop: None,
                task: None,
            };
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tick.tick() => {
                        let listed = progress.listed.load(Ordering::Relaxed);
                        let done = progress.judged.load(Ordering::Relaxed);
                        let more = if progress.listing_done.load(Ordering::Relaxed) { "" } else { "+" };
                        eprint!("\r\x1b[2K{what}: {done}/{listed}{more} paths");
                    }
                }
            }
            eprint!("\r\x1b[2K");
        });
        ProgressLine {
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stop and clear the line.
    pub async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Write `{ <head fields>, "paths": [ <one report per line> ], <tail fields> }` to `out`
/// without building the whole document in memory.
pub fn write_paths_doc<W: Write, T: serde::Serialize>(
    out: W,
    head: &[(&str, serde_json::Value)],
    items: &[T],
    tail: &[(&str, serde_json::Value)],
) -> std::io::Result<()> {
    write_doc(out, head, items.len(), tail, |out, i| {
        serde_json::to_writer(out, &items[i]).map_err(std::io::Error::from)
    })
}

/// [`write_paths_doc`] with items already serialized (each one JSON value).
pub fn write_paths_doc_raw<W: Write>(
    out: W,
    head: &[(&str, serde_json::Value)],
    items: &[&[u8]],
    tail: &[(&str, serde_json::Value)],
) -> std::io::Result<()> {
    write_doc(out, head, items.len(), tail, |out, i| {
        out.write_all(items[i])
    })
}

fn write_doc<W: Write>(
    out: W,
    head: &[(&str, serde_json::Value)],
    n: usize,
    tail: &[(&str, serde_json::Value)],
    mut item: impl FnMut(&mut dyn Write, usize) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    out.write_all(b"{\n")?;
    for (k, v) in head {
        writeln!(
            out,
            "  {}: {},",
            serde_json::to_string(k)?,
            serde_json::to_string(v)?
        )?;
    }
    out.write_all(b"  \"paths\": [")?;
    for i in 0..n {
        out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        item(&mut out, i)?;
    }
    out.write_all(if n == 0 { b"]" } else { b"\n  ]" })?;
    for (k, v) in tail {
        write!(
            out,
            ",\n  {}: {}",
            serde_json::to_string(k)?,
            serde_json::to_string(v)?
        )?;
    }
    out.write_all(b"\n}\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["1".into(), "22".into(), "".into()],
            ],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z\n1    22\n");
    }

    #[test]
    fn paths_doc_is_valid_json() {
        let mut buf = Vec::new();
        write_paths_doc(
            &mut buf,
            &[("cache", serde_json::json!("file:///x"))],
            &[serde_json::json!({"a": 1}), serde_json::json!({"b": "c"})],
            &[("exitCode", serde_json::json!(0))],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["cache"], "file:///x");
        assert_eq!(v["paths"][1]["b"], "c");
        assert_eq!(v["exitCode"], 0);
        let mut buf = Vec::new();
        write_paths_doc::<_, serde_json::Value>(&mut buf, &[], &[], &[]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["paths"].as_array().unwrap().len(), 0);
    }
}
