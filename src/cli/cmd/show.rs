//! `narscope show`: one narinfo with every field, its signatures, its verdict and whether its
//! NAR exists.

use std::io::Write;

use anyhow::{Result, bail};
use serde_json::json;

use crate::audit::PathReport;
use crate::cache::narinfo_key_in;
use crate::cli::ctx::{CACHE_HELP, Ctx, TrustArgs};
use crate::cli::output::table;
use crate::nix::check_path;
use crate::units::human_size;

/// Show one narinfo: every field, its signatures and whether its NAR exists.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// A store path, its base name (hash-name) or its 32-character hash part.
    pub path: String,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Fetch the narinfo, judge it, look for its NAR and print it all.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let (arg, path, trust, json) = (
        args.cache.as_str(),
        args.path.as_str(),
        &args.trust,
        args.json,
    );
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let store_dir = cache.store_dir().await?;
    let key = narinfo_key_in(path, &store_dir)?;
    let Some((meta, info)) = cache.fetch_narinfo(&key).await? else {
        bail!(
            "{}: no such narinfo (is {path} in this cache?)",
            cache.origin(&key)
        );
    };
    let mut report = PathReport::judge(&key, &info, &keys);
    report.check_store_dir(&info, &store_dir);
    let verdict = check_path(&info, &keys);
    let nar = match crate::cache::nar_key(&info.url) {
        Ok(k) => cache.store().head(&k).await?.map(|m| (k, m)),
        Err(_) => None,
    };
    // Over the paths as the narinfo writes them, in its own store directory.
    let fp = info.fingerprint();
    let dir = info.store_dir();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = json!({
            "key": key,
            "storeDir": dir,
            "storePath": info.absolute_path(),
            "url": info.url,
            "compression": info.compression_name(),
            "fileHash": info.file_hash.as_ref().map(|h| h.to_nix32()),
            "fileSize": info.file_size,
            "narHash": info.nar_hash.to_nix32(),
            "narSize": info.nar_size,
            "references": info.references.iter().map(|r| r.in_dir(dir)).collect::<Vec<_>>(),
            "deriver": info.deriver.as_ref().map(|d| d.in_dir(dir)),
            "ca": info.ca.as_ref().map(|c| c.to_string()),
            "signatures": info.sigs,
            "sigChecks": report.signatures,
            "status": report.status,
            "reasons": report.reasons,
            "fingerprint": fp,
            "narExists": nar.is_some(),
            "narObjectSize": nar.as_ref().map(|(_, m)| m.size),
            "lastModified": meta.last_modified.map(crate::units::rfc3339),
            "quirks": info.quirks().iter().map(|q| q.to_string()).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    let mut rows = vec![
        vec!["StorePath".into(), info.absolute_path()],
        vec!["URL".into(), info.url.clone()],
        vec!["Compression".into(), info.compression_name().to_string()],
    ];
    if let Some(h) = &info.file_hash {
        rows.push(vec!["FileHash".into(), h.to_nix32()]);
    }
    if let Some(s) = info.file_size {
        rows.push(vec!["FileSize".into(), format!("{s} ({})", human_size(s))]);
    }
    rows.push(vec!["NarHash".into(), info.nar_hash.to_nix32()]);
    rows.push(vec![
        "NarSize".into(),
        format!("{} ({})", info.nar_size, human_size(info.nar_size)),
    ]);
    let refs: Vec<String> = info.references.iter().map(|r| r.base_name()).collect();
    rows.push(vec![
        "References".into(),
        if refs.is_empty() {
            "(none)".into()
        } else {
            refs.join("\n             ")
        },
    ]);
    if let Some(d) = &info.deriver {
        rows.push(vec!["Deriver".into(), d.base_name()]);
    }
    if let Some(ca) = &info.ca {
        rows.push(vec!["CA".into(), ca.to_string()]);
    }
    rows.push(vec![
        "NAR object".into(),
        match &nar {
            Some((k, m)) => format!("{k} exists, {}", human_size(m.size)),
            None => "MISSING".into(),
        },
    ]);
    if let Some(t) = meta.last_modified {
        rows.push(vec!["Modified".into(), crate::units::rfc3339(t)]);
    }
    for r in &mut rows {
        r[0].push(':');
    }
    write!(out, "{}", table(&["", ""], &rows).trim_start_matches('\n'))?;
    writeln!(out, "\nSignatures:")?;
    if verdict.sigs.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for s in &report.signatures {
        let detail = s
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        writeln!(out, "  {:<24} {}{detail}", s.key_name, s.outcome)?;
    }
    writeln!(out, "\nVerdict: {}", report.status)?;
    for r in &report.reasons {
        writeln!(out, "  - {r}")?;
    }
    for q in info.quirks() {
        writeln!(out, "  - quirk: {q}")?;
    }
    writeln!(out, "Fingerprint: {fp}")?;
    Ok(0)
}
