//! `narscope doctor`: read a cache's bucket and judge it, each finding with its fix.

use std::io::Write;

use anyhow::{Result, bail};

use crate::cli::ctx::{CACHE_HELP, Ctx, confirm};
use crate::doctor::{self, DoctorOptions, Report, Severity};
use crate::units::{format_duration, human_size, parse_duration};

/// Exit code when a finding is an error.
pub const EXIT_FINDINGS: i32 = 1;

/// What `narscope doctor --help` says after the options: the checks, the exit codes.
const DOCTOR_NOTES: &str = "Checks: endpoint, credentials, region, bucket and addressing; \
nix-cache-info; versioning (noncurrent versions and delete markers, and whether a lifecycle rule \
removes them); lifecycle rules that expire or archive narinfos or NARs, and a missing \
AbortIncompleteMultipartUpload rule; incomplete multipart uploads; object lock and default \
retention; conditional writes (the probe writes and deletes one scratch object under \
.narscope-probe/); anonymous reads of nix-cache-info and one narinfo, against `public = true|false` \
of the cache in narscope's config; secret keys stored in the cache (named by object and key name, \
never printed). A file:// cache gets the checks that apply to it.

Exit codes: 0 when no finding is an error (warnings allowed), 1 when one is, 4 when the doctor \
could not run (a bad CACHE, a failed abort).";

/// The `after_help` of `narscope doctor`: the checks, the exit codes, what CACHE may be.
fn doctor_help() -> String {
    format!("{DOCTOR_NOTES}\n\n{CACHE_HELP}")
}

/// Judge a cache's bucket: access, versioning, lifecycle rules, multipart uploads, object lock,
/// conditional writes, anonymous reads, stored secret keys and nix-cache-info.
///
/// Each finding has a severity (ok, info, warning, error), a one-line summary naming the
/// object or setting, why it matters, and a fix (for lifecycle problems, the S3 lifecycle JSON
/// rule to add). Nothing is changed, except that --abort-older-than aborts the incomplete
/// multipart uploads older than that, after confirmation (or --yes).
#[derive(Debug, clap::Args)]
#[command(after_help = doctor_help())]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Print the findings as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Abort the incomplete multipart uploads started longer ago than this (e.g. 1d; 0s for
    /// all), freeing their parts' bytes.
    #[arg(long, value_name = "DURATION")]
    pub abort_older_than: Option<String>,
    /// Do not ask before aborting uploads.
    #[arg(long)]
    pub yes: bool,
    /// Skip the conditional-write probe (the only check that writes: one scratch object).
    #[arg(long)]
    pub no_write_probe: bool,
}

/// Run the checks, print the findings, abort stale uploads if asked.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let abort_older_than = match &args.abort_older_than {
        Some(s) => Some(parse_duration(s).map_err(|e| anyhow::anyhow!("--abort-older-than: {e}"))?),
        None => None,
    };
    let (cache, named) = ctx.open(&args.cache).await?;
    let opts = DoctorOptions {
        public: named.and_then(|n| n.public),
        abort_older_than,
        concurrency: ctx.concurrency(),
        no_write_probe: args.no_write_probe,
    };
    let report = doctor::diagnose(&cache, &opts).await;
    let mut aborted = None;
    if let Some(d) = abort_older_than
        && !report.to_abort.is_empty()
    {
        let bytes: u64 = report.to_abort.iter().map(|u| u.bytes).sum();
        let question = format!(
            "abort {} incomplete multipart uploads older than {} ({})?",
            report.to_abort.len(),
            format_duration(d.as_secs()),
            human_size(bytes)
        );
        if args.json && !args.yes {
            bail!("not aborting uploads without confirmation: add --yes");
        }
        if args.yes || confirm("aborting uploads", &question)? {
            aborted = Some(doctor::abort_uploads(cache.store().as_ref(), &report.to_abort).await);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut doc = serde_json::to_value(&report)?;
        if let Some(o) = doc.as_object_mut() {
            o.insert("worst".into(), serde_json::json!(report.worst()));
            o.insert(
                "incompleteUploads".into(),
                serde_json::json!(
                    report
                        .uploads
                        .iter()
                        .map(|u| serde_json::json!({
                            "key": u.key,
                            "uploadId": u.upload_id,
                            "bytes": u.bytes,
                            "parts": u.parts,
                            "initiated": u.initiated.and_then(|t| t
                                .duration_since(std::time::UNIX_EPOCH)
                                .ok()
                                .map(|d| d.as_secs())),
                        }))
                        .collect::<Vec<_>>()
                ),
            );
            if let Some((n, bytes, failed)) = &aborted {
                o.insert(
                    "aborted".into(),
                    serde_json::json!({"uploads": n, "bytes": bytes, "failed": failed}),
                );
            }
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        write!(out, "{}", render_text(&report))?;
        if let Some((n, bytes, failed)) = &aborted {
            writeln!(
                out,
                "\naborted {n} incomplete multipart uploads ({})",
                human_size(*bytes)
            )?;
            for f in failed {
                writeln!(out, "  could not abort {f}")?;
            }
        }
    }
    if let Some((_, _, failed)) = &aborted
        && !failed.is_empty()
    {
        return Ok(crate::cli::ctx::EXIT_ERROR);
    }
    Ok(if report.has_errors() {
        EXIT_FINDINGS
    } else {
        0
    })
}

/// The findings as text: grouped by severity (errors first), a symbol per severity, the
/// details and the fix indented below each summary.
pub fn render_text(report: &Report) -> String {
    let mut s = format!("doctor: {}\n", report.cache);
    for sev in [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Ok,
    ] {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        let title = match sev {
            Severity::Error => "errors",
            Severity::Warning => "warnings",
            Severity::Info => "notes",
            Severity::Ok => "ok",
        };
        s.push_str(&format!("\n{title}:\n"));
        for f in group {
            s.push_str(&format!("  {} [{}] {}\n", sev.symbol(), f.check, f.summary));
            if sev >= Severity::Warning {
                for l in f.details.lines().filter(|l| !l.is_empty()) {
                    s.push_str(&format!("      {l}\n"));
                }
            }
            if let Some(fix) = &f.fix {
                let mut lines = fix.lines();
                if let Some(first) = lines.next() {
                    s.push_str(&format!("      fix: {first}\n"));
                }
                for l in lines {
                    s.push_str(&format!("        {l}\n"));
                }
            }
        }
    }
    let (ok, info, warn, err) = report.counts();
    s.push_str(&format!(
        "\n{err} errors, {warn} warnings, {info} notes, {ok} ok\n"
    ));
    s
}
