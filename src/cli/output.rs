//! What the commands print: sizes, tables, verdict lines, the streamed `--json` documents of
//! path reports, and the summary (text or JSON) of a job or of a job that did not run.

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use super::ctx::{EXIT_ERROR, EXIT_REFUSED};
use crate::audit::PathReport;
use crate::jobs::{JobHandle, JobState};
use crate::storage::ThrottleStats;

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

/// A job's per-item errors (printed by the caller, or put in the JSON).
fn errors(job: &JobHandle) -> Vec<String> {
    job.progress.errors()
}

/// A job state as the word of the JSON documents, and its error if it failed.
pub fn state_word(s: &JobState) -> (&'static str, Option<String>) {
    match s {
        JobState::Running => ("running", None),
        JobState::Done => ("done", None),
        JobState::Failed(e) => ("failed", Some(e.clone())),
        JobState::Cancelled => ("cancelled", None),
    }
}

/// The JSON document of a job that did not run: `doc` (a plan, or nothing) with the fields
/// every job document has. `state` is `planned` (a dry run), `refused`, `empty` (nothing to
/// do) or `declined` (the user said no).
pub fn not_run_doc(what: &str, state: &str, code: i32, plan: Option<serde_json::Value>) -> String {
    let mut doc = json!({
        "job": what,
        "state": state,
        "error": null,
        "summary": null,
        "errors": [],
        "exitCode": code,
    });
    if let (Some(serde_json::Value::Object(plan)), Some(d)) = (plan, doc.as_object_mut()) {
        for (k, v) in plan {
            d.entry(k).or_insert(v);
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Print `summary` as text or JSON, with how the server throttled the job's requests (a
/// line after the text when it did; `throttle` in the JSON); returns the exit code.
pub fn report<T: serde::Serialize>(
    json_out: bool,
    what: &str,
    throttle: Option<ThrottleStats>,
    job: &JobHandle,
    state: &JobState,
    summary: Option<&T>,
    text: impl FnOnce(&T) -> String,
) -> Result<i32> {
    let errs = errors(job);
    let (word, err) = state_word(state);
    let code = if *state == JobState::Done && errs.is_empty() {
        0
    } else if err.as_deref().is_some_and(|e| e.starts_with("refusing")) {
        EXIT_REFUSED
    } else {
        EXIT_ERROR
    };
    if json_out {
        let doc = json!({
            "job": what,
            "state": word,
            "error": err,
            "summary": summary,
            "errors": errs,
            "throttle": throttle,
            "exitCode": code,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(code);
    }
    let mut err_out = std::io::stderr().lock();
    for e in &errs {
        writeln!(err_out, "error: {e}")?;
    }
    if let Some(e) = &err {
        writeln!(err_out, "error: {e}")?;
    }
    if let Some(s) = summary {
        println!("{}", text(s));
    } else if *state == JobState::Cancelled {
        println!("{what} cancelled");
    }
    if let Some(note) = throttle.and_then(|t| t.note()) {
        println!("{note}");
    }
    Ok(code)
}

/// One line per path: status, store path (or key), and the first reason.
pub fn write_verdict_line(out: &mut impl Write, r: &PathReport) -> std::io::Result<()> {
    let name = r.store_path.as_deref().unwrap_or(&r.key);
    let why = r
        .reasons
        .first()
        .map(|s| format!("  ({s})"))
        .unwrap_or_default();
    writeln!(out, "{:<17} {name}{why}", r.status.as_str())
}

/// Print the narinfos that could not be read, each with why and what to do (stderr).
pub fn print_unknown(unknown: &[crate::index::UnknownRow]) {
    for u in unknown.iter().take(50) {
        eprintln!("  {} `{}`: {}", u.state, u.key, u.cause);
        eprintln!("    what to do: {}", u.advice());
    }
    if unknown.len() > 50 {
        eprintln!("  … and {} more", unknown.len() - 50);
    }
}

/// "; 3 path(s) of the plan were kept: …" when the look just before deleting kept some.
pub fn kept_note(kept: u64) -> String {
    if kept == 0 {
        String::new()
    } else {
        format!(
            "; {kept} narinfo(s) of the plan were kept: the look just before deleting found \
             them pushed, pinned or referenced since"
        )
    }
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
