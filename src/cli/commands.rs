//! What each subcommand does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::json;

use super::output::{ProgressLine, size, table, write_paths_doc, write_paths_doc_raw};
use super::{Cli, Command, DashboardArgs, KeyAction, TrustArgs};
use crate::audit::{self, AuditOptions, AuditProgress, PathReport, Status};
use crate::cache::{Cache, narinfo_key_in};
use crate::config::{self, Config};
use crate::nix::{PublicKey, SecretKey, TrustedKeys, check_path};
use crate::storage::{self, CacheUrl};

/// Exit code for failures that are not verdicts (bit 4 of `nix store verify`).
pub const EXIT_ERROR: i32 = 4;

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    // `narscope config` works on the config file itself (it may not exist yet).
    let config_path = cli.config.clone();
    if let Some(Command::Config { action }) = cli.command {
        return super::config_cmd::run(action, config_path.as_deref(), cli.no_config);
    }
    let cfg = if cli.no_config {
        Config::default()
    } else {
        Config::load(cli.config.as_deref())?
    };
    let concurrency = cli
        .concurrency
        .or(cfg.concurrency)
        .unwrap_or(crate::cache::DEFAULT_CONCURRENCY)
        .max(1);
    let ctx = Ctx {
        cfg,
        no_config: cli.no_config,
        concurrency,
    };
    let Some(command) = cli.command else {
        let Some(cache) = cli.cache else {
            bail!(
                "give a CACHE to open (e.g. narscope 's3://bucket?region=…' or narscope /srv/cache), \
                 or run `narscope demo` to see the dashboard on a demo cache; `narscope --help` lists the commands"
            );
        };
        return ctx
            .dashboard(&cache, &cli.trust, &cli.dashboard, None)
            .await;
    };
    match command {
        Command::Ls { cache, trust, json } => ctx.ls(&cache, &trust, json).await,
        Command::Show {
            cache,
            path,
            trust,
            json,
        } => ctx.show(&cache, &path, &trust, json).await,
        Command::Verify {
            cache,
            paths,
            trust,
            contents,
            nar_concurrency,
            json,
            long,
        } => {
            let opts = AuditOptions {
                concurrency,
                contents,
                nar_concurrency,
            };
            ctx.verify(&cache, &paths, &trust, &opts, json, long).await
        }
        Command::Info { cache, trust, json } => ctx.info(&cache, &trust, json).await,
        Command::Init {
            cache,
            priority,
            want_mass_query,
        } => {
            ctx.init(&cache, priority, want_mass_query.then_some(true))
                .await
        }
        Command::Keygen {
            name,
            secret_key_file,
            public_key_file,
            force,
        } => keygen(&name, &secret_key_file, &public_key_file, force),
        Command::Key {
            action: KeyAction::Public { file },
        } => key_public(&file),
        Command::Demo {
            dir,
            no_tui,
            dashboard,
        } => ctx.demo(dir, no_tui, &dashboard).await,
        Command::Sign {
            cache,
            paths,
            key_file,
            all,
            unsigned,
            remove_key,
            dry_run,
            trust,
            json,
        } => {
            super::jobs::sign_cmd(
                &ctx,
                &cache,
                &paths,
                key_file.as_deref(),
                all,
                unsigned,
                remove_key,
                dry_run,
                &trust,
                json,
            )
            .await
        }
        Command::Push {
            cache,
            paths,
            key_file,
            compression,
            level,
            jobs,
            json,
        } => {
            super::jobs::push_cmd(
                &ctx,
                &cache,
                &paths,
                key_file.as_deref(),
                compression.as_deref(),
                level,
                jobs,
                json,
            )
            .await
        }
        Command::Pull {
            cache,
            paths,
            to,
            recursive,
            into_store,
            trust,
            json,
        } => {
            super::jobs::pull_cmd(
                &ctx, &cache, &paths, to, recursive, into_store, &trust, json,
            )
            .await
        }
        Command::Gc {
            cache,
            roots_files,
            roots_from_nix,
            keep_younger_than,
            grace,
            allow_no_roots,
            why,
            dry_run,
            yes,
            trust,
            json,
        } => {
            let args = super::jobs::GcArgs {
                roots_files,
                roots_from_nix,
                keep_younger: keep_younger_than,
                grace,
                allow_no_roots,
                why,
                dry_run,
                yes,
                json,
            };
            super::jobs::gc_cmd(&ctx, &cache, args, &trust).await
        }
        Command::Pin { cache, action } => super::jobs::pin_cmd(&ctx, &cache, action).await,
        Command::Config { action } => {
            super::config_cmd::run(action, config_path.as_deref(), ctx.no_config)
        }
        Command::Delete {
            cache,
            paths,
            unsigned,
            untrusted,
            cascade,
            even_if_pinned,
            dry_run,
            yes,
            trust,
            json,
        } => {
            let args = super::jobs::DeleteArgs {
                paths,
                unsigned,
                untrusted,
                cascade,
                even_if_pinned,
                dry_run,
                yes,
                json,
            };
            super::jobs::delete_cmd(&ctx, &cache, args, &trust).await
        }
    }
}

pub(crate) struct Ctx {
    cfg: Config,
    no_config: bool,
    concurrency: usize,
}

impl Ctx {
    /// narinfo requests in flight.
    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency
    }

    pub(crate) async fn open<'a>(
        &'a self,
        arg: &'a str,
    ) -> Result<(Arc<Cache>, Option<&'a config::NamedCache>)> {
        let url = self.url(arg)?;
        // Before anything is read or written: what the URL's parameters will cost.
        for w in url.params().take_warnings() {
            eprintln!("warning: {w}");
        }
        let cache = Cache::open(&url).await?;
        Ok((Arc::new(cache), self.cfg.resolve_cache(arg).1))
    }

    /// The cache URL `arg` names (a URL, a directory or a name in the config), parsed and
    /// its parameters checked; no request is made.
    pub(crate) fn url(&self, arg: &str) -> Result<CacheUrl> {
        let (url, _) = self.cfg.resolve_cache(arg);
        CacheUrl::parse(url).with_context(|| format!("cache '{arg}'"))
    }

    pub(crate) fn keys(
        &self,
        trust: &TrustArgs,
        named: Option<&config::NamedCache>,
    ) -> Result<Arc<TrustedKeys>> {
        let (keys, sources) =
            config::trusted_keys(&trust.trusted_keys, &self.cfg, named, self.no_config)?;
        for s in &sources {
            tracing::info!("trusting {} (from {})", s.key, s.source);
        }
        Ok(Arc::new(keys))
    }

    async fn run_audit(
        &self,
        cache: &Arc<Cache>,
        paths: &[String],
        keys: Arc<TrustedKeys>,
        opts: &AuditOptions,
    ) -> Result<Vec<PathReport>> {
        let progress = Arc::new(AuditProgress::default());
        let line = ProgressLine::start(progress.clone(), "checking");
        let res = audit::audit(cache.clone(), paths, keys, opts, progress).await;
        line.finish().await;
        let mut reports = res?;
        reports.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        Ok(reports)
    }

    async fn ls(&self, arg: &str, trust: &TrustArgs, json: bool) -> Result<i32> {
        let (cache, named) = self.open(arg).await?;
        let keys = self.keys(trust, named)?;
        let opts = AuditOptions {
            concurrency: self.concurrency,
            ..AuditOptions::default()
        };
        let reports = self.run_audit(&cache, &[], keys, &opts).await?;
        let mut out = std::io::stdout().lock();
        if json {
            let head = [("cache", json!(cache.url().to_string()))];
            write_paths_doc(out, &head, &reports, &[])?;
            return Ok(0);
        }
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                vec![
                    r.store_path.clone().unwrap_or_else(|| r.key.clone()),
                    r.nar_size.map(size).unwrap_or_default(),
                    r.file_size.map(size).unwrap_or_default(),
                    r.compression.clone().unwrap_or_default(),
                    r.status.to_string(),
                ]
            })
            .collect();
        write!(
            out,
            "{}",
            table(
                &["STORE PATH", "NAR", "FILE", "COMPRESSION", "STATUS"],
                &rows
            )
        )?;
        writeln!(out, "{} paths", reports.len())?;
        Ok(0)
    }

    async fn show(&self, arg: &str, path: &str, trust: &TrustArgs, json: bool) -> Result<i32> {
        let (cache, named) = self.open(arg).await?;
        let keys = self.keys(trust, named)?;
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
                "lastModified": meta.last_modified.map(rfc3339),
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
            rows.push(vec!["FileSize".into(), format!("{s} ({})", size(s))]);
        }
        rows.push(vec!["NarHash".into(), info.nar_hash.to_nix32()]);
        rows.push(vec![
            "NarSize".into(),
            format!("{} ({})", info.nar_size, size(info.nar_size)),
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
                Some((k, m)) => format!("{k} exists, {}", size(m.size)),
                None => "MISSING".into(),
            },
        ]);
        if let Some(t) = meta.last_modified {
            rows.push(vec!["Modified".into(), rfc3339(t)]);
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

    /// `verify`; with `--json` a failure is one document too (the error in it, exit 4).
    async fn verify(
        &self,
        arg: &str,
        paths: &[String],
        trust: &TrustArgs,
        opts: &AuditOptions,
        json: bool,
        long: bool,
    ) -> Result<i32> {
        match self.verify_inner(arg, paths, trust, opts, json, long).await {
            Err(e) if json => {
                let doc = json!({
                    "cache": arg,
                    "contents": opts.contents,
                    "paths": [],
                    "error": format!("{e:#}"),
                    "exitCode": EXIT_ERROR,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
                eprintln!("error: {e:#}");
                Ok(EXIT_ERROR)
            }
            r => r,
        }
    }

    async fn verify_inner(
        &self,
        arg: &str,
        paths: &[String],
        trust: &TrustArgs,
        opts: &AuditOptions,
        json: bool,
        long: bool,
    ) -> Result<i32> {
        let (cache, named) = self.open(arg).await?;
        let keys = self.keys(trust, named)?;
        if keys.is_empty() {
            tracing::warn!("no trusted keys: only content-addressed paths can pass");
        }
        // Keep only what gets printed: one serialized line per path for --json, the reports
        // worth a line otherwise. A 100k-path audit then holds a few bytes per good path.
        let mut counts: BTreeMap<Status, usize> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        let mut code = 0;
        let mut total = 0usize;
        let mut lines: Vec<(String, String, Vec<u8>)> = Vec::new();
        let mut kept: Vec<PathReport> = Vec::new();
        let mut ser_err = None;
        let progress = Arc::new(AuditProgress::default());
        let line = ProgressLine::start(progress.clone(), "checking");
        let res = audit::audit_each(cache.clone(), paths, keys, opts, progress, |r| {
            total += 1;
            code |= r.status.exit_bits();
            *counts.entry(r.status).or_default() += 1;
            if json {
                let (name, key) = sort_key(&r);
                match serde_json::to_vec(&r) {
                    Ok(v) => lines.push((name.to_string(), key.to_string(), v)),
                    Err(e) => ser_err = Some(e),
                }
            } else if long || !matches!(r.status, Status::Trusted | Status::ContentAddressed) {
                kept.push(r);
            }
        })
        .await;
        line.finish().await;
        res?;
        if let Some(e) = ser_err {
            return Err(e.into());
        }
        let mut out = std::io::stdout().lock();
        if json {
            lines.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            let counts: BTreeMap<&str, usize> =
                counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            let head = [
                ("cache", json!(cache.url().to_string())),
                ("contents", json!(opts.contents)),
            ];
            let tail = [("summary", json!(counts)), ("exitCode", json!(code))];
            let raw: Vec<&[u8]> = lines.iter().map(|(_, _, v)| v.as_slice()).collect();
            write_paths_doc_raw(out, &head, &raw, &tail)?;
            return Ok(code);
        }
        kept.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        for r in &kept {
            write_verdict_line(&mut out, r)?;
        }
        let parts: Vec<String> = counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        writeln!(
            out,
            "checked {total} paths{}: {}",
            if opts.contents { " with contents" } else { "" },
            if parts.is_empty() {
                "nothing to check".into()
            } else {
                parts.join(", ")
            }
        )?;
        Ok(code)
    }

    async fn info(&self, arg: &str, trust: &TrustArgs, json: bool) -> Result<i32> {
        let (cache, named) = self.open(arg).await?;
        let keys = self.keys(trust, named)?;
        let cache_info = cache.cache_info().await?;
        let opts = AuditOptions {
            concurrency: self.concurrency,
            ..AuditOptions::default()
        };
        let reports = self.run_audit(&cache, &[], keys, &opts).await?;
        // Everything stored under the cache root, NARs and litter included.
        let mut objects = 0u64;
        let mut stored = 0u64;
        // Local stores list from one cached directory read; remote ones as parallel scans.
        let scans = if cache.store().supports_blocking_get() {
            1
        } else {
            self.concurrency.clamp(1, 32)
        };
        let mut pages = std::pin::pin!(storage::list_root_parallel_with(
            cache.store().clone(),
            scans,
            storage::RootKeys::All
        ));
        // Objects to read for secret keys, and objects named like a narinfo that are none.
        let mut key_candidates = Vec::new();
        let mut misnamed = Vec::new();
        while let Some(page) = pages.next().await {
            for o in page?.objects {
                objects += 1;
                stored += o.size;
                if let Some(why) = crate::nix::store_path::narinfo_key_problem(&o.key) {
                    misnamed.push((o.key.clone(), why));
                }
                if crate::keyprobe::is_candidate(&o.key, o.size) {
                    key_candidates.push((o.key, o.size));
                }
            }
        }
        misnamed.sort();
        let leaked = crate::keyprobe::probe(cache.store(), key_candidates).await;
        let problems = info_problems(&leaked, &misnamed);
        let nar_bytes: u64 = reports.iter().filter_map(|r| r.nar_size).sum();
        let file_bytes: u64 = reports.iter().filter_map(|r| r.file_size).sum();
        let mut mix: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in &reports {
            if let Some(c) = &r.compression {
                let e = mix.entry(c.clone()).or_default();
                e.0 += 1;
                e.1 += r.file_size.unwrap_or(0);
            }
        }
        let summary = audit::summarize(&reports);
        let mut out = std::io::stdout().lock();
        if json {
            let doc = json!({
                "cache": cache.url().to_string(),
                "cacheInfo": cache_info.as_ref().map(|c| json!({
                    "storeDir": c.declared_store_dir(),
                    "wantMassQuery": c.want_mass_query,
                    "priority": c.priority,
                    "problems": c.problems(),
                })),
                "paths": reports.len(),
                "narBytes": nar_bytes,
                "fileBytes": file_bytes,
                "objects": objects,
                "storedBytes": stored,
                "compression": mix.iter().map(|(k, (n, b))| (k.clone(), json!({"paths": n, "fileBytes": b}))).collect::<serde_json::Map<_, _>>(),
                "verdicts": summary.iter().map(|(s, n)| (s.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "problems": problems,
                "secretKeys": leaked.found,
                "keyCheck": json!({
                    "checked": leaked.checked,
                    "notChecked": leaked.not_checked,
                }),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            return Ok(0);
        }
        let ci = match &cache_info {
            None => "MISSING (Nix writes it on first push; `narscope init` writes one)".into(),
            Some(c) => {
                let mut parts = Vec::new();
                if let Some(d) = c.declared_store_dir() {
                    parts.push(format!("StoreDir {d}"));
                }
                if let Some(w) = c.want_mass_query {
                    parts.push(format!("WantMassQuery {}", u8::from(w)));
                }
                if let Some(p) = c.priority {
                    parts.push(format!("Priority {p}"));
                }
                let mut s = parts.join(", ");
                if !c.problems().is_empty() {
                    if !s.is_empty() {
                        s.push_str("; ");
                    }
                    s.push_str("BROKEN: ");
                    s.push_str(&c.problems().join("; "));
                }
                s
            }
        };
        let n = reports.len().max(1) as f64;
        let mix_s: Vec<String> = mix
            .iter()
            .map(|(k, (c, b))| format!("{k} {c} ({:.0}%, {})", *c as f64 * 100.0 / n, size(*b)))
            .collect();
        let verdicts: Vec<String> = summary
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let rows = vec![
            vec!["cache:".into(), cache.url().to_string()],
            vec!["nix-cache-info:".into(), ci],
            vec!["paths:".into(), reports.len().to_string()],
            vec![
                "NAR bytes:".into(),
                format!("{} ({nar_bytes})", size(nar_bytes)),
            ],
            vec![
                "file bytes:".into(),
                format!("{} (FileSize of all narinfos)", size(file_bytes)),
            ],
            vec![
                "stored bytes:".into(),
                format!("{} in {objects} objects", size(stored)),
            ],
            vec!["compression:".into(), mix_s.join(", ")],
            vec!["verdicts:".into(), verdicts.join(", ")],
        ];
        write!(out, "{}", table(&["", ""], &rows).trim_start_matches('\n'))?;
        write_info_problems(&mut out, &problems, &leaked)?;
        Ok(0)
    }

    async fn init(
        &self,
        arg: &str,
        priority: Option<i64>,
        want_mass_query: Option<bool>,
    ) -> Result<i32> {
        // Everything the URL says is checked before the cache is touched: its key files too
        // (a writer of this cache would sign with them).
        let url = self.url(arg)?;
        let wanted = crate::jobs::push::new_cache_info(url.params(), priority, want_mass_query)
            .map_err(anyhow::Error::msg)?;
        crate::jobs::sign::load_signing_keys(url.params(), &[]).map_err(anyhow::Error::msg)?;
        let (cache, _) = self.open(arg).await?;
        let created = cache.store().ensure_container().await?;
        let wanted_text = wanted.to_text();
        if let Some(existing) = cache.cache_info().await? {
            let existing_text = existing.to_text();
            if existing_text == wanted_text {
                println!(
                    "{} already has this nix-cache-info; nothing to do",
                    cache.url()
                );
                return Ok(0);
            }
            bail!(
                "{} already has a different nix-cache-info; refusing to overwrite it.\n--- existing\n{}--- wanted\n{}",
                cache.origin(crate::cache::CACHE_INFO_KEY),
                existing_text,
                wanted_text
            );
        }
        cache.write_cache_info(&wanted).await?;
        println!(
            "{} {}; wrote nix-cache-info:\n{}",
            if created { "created" } else { "initialised" },
            cache.url(),
            wanted_text.trim_end()
        );
        Ok(0)
    }

    async fn demo(
        &self,
        dir: Option<std::path::PathBuf>,
        no_tui: bool,
        dash: &DashboardArgs,
    ) -> Result<i32> {
        use std::io::IsTerminal;
        let dir = match dir {
            Some(d) => d,
            None => crate::demo::default_dir()?,
        };
        let demo = crate::demo::write_demo_cache(&dir)?;
        let url = CacheUrl::file(dir.clone());
        if !no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            let trust = TrustArgs {
                trusted_keys: vec![demo.public_key.to_string()],
            };
            let notice = format!(
                "demo cache in {} (its keys beside it in {}); its key {} is trusted here. Press ? for help.",
                dir.display(),
                demo.secret_key_file
                    .parent()
                    .unwrap_or(&demo.secret_key_file)
                    .display(),
                demo.public_key.name()
            );
            return self
                .dashboard(&url.to_string(), &trust, dash, Some(notice))
                .await;
        }
        println!("wrote a demo cache to {}", dir.display());
        println!(
            "its keys are kept beside it, not in it: {} (secret) and {}",
            demo.secret_key_file.display(),
            demo.public_key_file.display()
        );
        println!("its signing key is trusted here: {}\n", demo.public_key);
        let cache = Arc::new(Cache::open(&url).await?);
        let mut keys = TrustedKeys::new();
        keys.add(demo.public_key.clone());
        let opts = AuditOptions {
            concurrency: self.concurrency,
            contents: true,
            ..AuditOptions::default()
        };
        let reports = self.run_audit(&cache, &[], Arc::new(keys), &opts).await?;
        let mut out = std::io::stdout().lock();
        for r in &reports {
            write_verdict_line(&mut out, r)?;
        }
        writeln!(
            out,
            "\nTry: narscope verify {} --trusted-key '{}' --contents",
            dir.display(),
            demo.public_key
        )?;
        Ok(0)
    }
}

impl Ctx {
    async fn dashboard(
        &self,
        arg: &str,
        trust: &TrustArgs,
        dash: &DashboardArgs,
        notice: Option<String>,
    ) -> Result<i32> {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            bail!(
                "the dashboard needs a terminal; for scripts use `narscope ls`, `verify` or `info` (with --json)"
            );
        }
        // Key files are checked before the cache is touched.
        let key_file = match (&dash.key_file, &self.cfg.signing_key_file) {
            (Some(f), _) => Some((f.clone(), "--key-file".to_string())),
            (None, Some(f)) => Some((f.clone(), "signing-key-file in the config".to_string())),
            (None, None) => None,
        };
        let push = crate::jobs::push::PushOptions::resolve(
            self.url(arg)?.params(),
            &crate::jobs::push::PushFlags {
                key_files: key_file.into_iter().collect(),
                ..Default::default()
            },
        )
        .map_err(anyhow::Error::msg)?;
        let (cache, named) = self.open(arg).await?;
        let keys = self.keys(trust, named)?;
        let keymap =
            crate::tui::keymap::Keymap::with_user(crate::tui::user_file("keymap.toml")?.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let theme = crate::tui::theme::Theme::load(
            crate::tui::user_file("theme.toml")?.as_deref(),
            no_color,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let notice = notice.or_else(|| {
            keys.is_empty().then(|| {
                "no trusted keys: only content-addressed paths can pass (add --trusted-key)"
                    .to_string()
            })
        });
        crate::tui::runtime::run(crate::tui::runtime::TuiOptions {
            push,
            url: cache.url().to_string(),
            cache,
            keys,
            read_only: dash.read_only,
            persist: !dash.no_index,
            concurrency: self.concurrency,
            keymap,
            theme,
            log_path: crate::tui::log_path().map(|p| p.display().to_string()),
            notice,
        })
        .await?;
        Ok(0)
    }
}

/// One line per path: status, store path (or key), and the first reason.
fn write_verdict_line(out: &mut impl Write, r: &PathReport) -> std::io::Result<()> {
    let name = r.store_path.as_deref().unwrap_or(&r.key);
    let why = r
        .reasons
        .first()
        .map(|s| format!("  ({s})"))
        .unwrap_or_default();
    writeln!(out, "{:<17} {name}{why}", r.status.as_str())
}

fn sort_key(r: &PathReport) -> (&str, &str) {
    let name = r
        .store_path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .and_then(|b| b.get(33..))
        .unwrap_or("");
    (name, r.key.as_str())
}

fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `info`'s problems beyond verdicts: secret keys stored in the cache and objects named like a
/// narinfo that name no store path, each `{kind, object, message}`.
fn info_problems(
    leaked: &crate::keyprobe::KeyProbe,
    misnamed: &[(String, String)],
) -> Vec<serde_json::Value> {
    let keys = leaked
        .found
        .iter()
        .map(|k| json!({"kind": "secret-key", "object": k.object, "message": k.message()}));
    let names = misnamed.iter().map(|(key, why)| {
        json!({"kind": "misnamed-narinfo", "object": key, "message": format!("BROKEN: {why}")})
    });
    keys.chain(names).collect()
}

/// The human form of [`info_problems`], after the table.
fn write_info_problems(
    out: &mut impl Write,
    problems: &[serde_json::Value],
    leaked: &crate::keyprobe::KeyProbe,
) -> std::io::Result<()> {
    if problems.is_empty() && leaked.not_checked == 0 {
        return Ok(());
    }
    writeln!(out, "problems:")?;
    for p in problems {
        writeln!(out, "  - {}", p["message"].as_str().unwrap_or_default())?;
    }
    if leaked.not_checked > 0 {
        writeln!(
            out,
            "  - {} small objects were not checked for secret keys (at most {} are read)",
            leaked.not_checked,
            crate::keyprobe::MAX_KEY_PROBES
        )?;
    }
    Ok(())
}

fn keygen(name: &str, secret: &Path, public: &Path, force: bool) -> Result<i32> {
    if same_file(secret, public) {
        bail!(
            "--secret-key-file {} and --public-key-file {} are the same file: writing the public \
             key would destroy the secret one; give two different files (nothing was written)",
            secret.display(),
            public.display()
        );
    }
    let sk = SecretKey::generate(name)?;
    let pk = sk.public_key();
    for p in [secret, public] {
        if p.exists() && !force {
            bail!(
                "{} exists; refusing to overwrite it (use --force)",
                p.display()
            );
        }
    }
    write_private(secret, sk.to_file_text().as_bytes())
        .with_context(|| format!("cannot write secret key {}", secret.display()))?;
    std::fs::write(public, pk.to_string())
        .with_context(|| format!("cannot write public key {}", public.display()))?;
    println!("wrote secret key {} (keep it private)", secret.display());
    println!("wrote public key {}: {pk}", public.display());
    print!("{}", keygen_next_steps(&pk, secret, public));
    Ok(0)
}

/// What to do with a fresh key pair: trust it in Nix and in narscope, sign with it. Shows the
/// public key and the files' paths, never the secret.
fn keygen_next_steps(pk: &PublicKey, secret: &Path, public: &Path) -> String {
    let (s, p) = (shell_word(secret), shell_word(public));
    format!(
        "\nNext steps:\n\
         \x20 Trust it in Nix: add this line to nix.conf (or NIX_CONFIG) where you substitute:\n\
         \x20   extra-trusted-public-keys = {pk}\n\
         \x20 Trust it in narscope, so `ls`, `verify` and the dashboard show your pushes as trusted:\n\
         \x20   narscope config trust CACHE {p}          # CACHE: a named cache, or a URL with --name NAME\n\
         \x20   narscope config trust --global {p}       # or for every cache\n\
         \x20 Sign as you push:\n\
         \x20   narscope push CACHE PATH… --key-file {s}\n"
    )
}

/// `p` as one shell word: as is when it is plain, else single-quoted.
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Whether two paths name the same file: the same place once the directories are resolved and
/// symbolic links (dangling ones too) followed, or the same existing file (hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if final_location(a) == final_location(b) {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Where writing to `p` ends up: its directory resolved and links at its end followed, even
/// dangling ones (a write through a dangling link creates its target).
fn final_location(p: &Path) -> std::path::PathBuf {
    let mut p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // Linux follows at most 40 links; give up on loops the same way.
    for _ in 0..40 {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return p;
        };
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let here = dir.join(name);
        match std::fs::read_link(&here) {
            Ok(target) => p = dir.join(target),
            Err(_) => return here,
        }
    }
    p
}

/// `narscope key public FILE`: print the public key of a secret key file (never the secret).
fn key_public(file: &Path) -> Result<i32> {
    let stdin = file == Path::new("-");
    let what = if stdin {
        "standard input".to_string()
    } else {
        file.display().to_string()
    };
    let text = if stdin {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .with_context(|| format!("cannot read secret key {what}"))?;
    match SecretKey::parse(&text) {
        Ok(sk) => {
            println!("{}", sk.public_key());
            Ok(0)
        }
        Err(e) => {
            if let Ok(pk) = PublicKey::parse(&text) {
                bail!(
                    "{what} holds the public key '{}', not a secret key: it is already what \
                     trusted-public-keys needs",
                    pk.name()
                );
            }
            Err(e).with_context(|| format!("secret key {what}"))
        }
    }
}

/// Write a file only its owner can read, replacing it atomically.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = path.with_file_name(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(d) = dir {
        let _ = std::fs::File::open(d).and_then(|f| f.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_sees_through_spelling_links_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        let a = d.join("a.key");
        // Not existing yet: the same place spelled differently.
        assert!(same_file(&a, &a));
        assert!(same_file(&a, &d.join("sub/../a.key")));
        assert!(same_file(&a, &d.join("./sub/.././a.key")));
        assert!(!same_file(&a, &d.join("b.key")));
        // A dangling link to the other: writing through it creates the other.
        std::os::unix::fs::symlink("a.key", d.join("link")).unwrap();
        assert!(same_file(&a, &d.join("link")));
        assert!(same_file(&d.join("sub/../link"), &a));
        // A link to the directory holding it.
        std::os::unix::fs::symlink(d, d.join("sub/up")).unwrap();
        assert!(same_file(&a, &d.join("sub/up/a.key")));
        // Existing files: hard links are the same file too.
        std::fs::write(&a, "x").unwrap();
        std::fs::hard_link(&a, d.join("hard")).unwrap();
        assert!(same_file(&d.join("hard"), &a));
        std::fs::write(d.join("b.key"), "x").unwrap();
        assert!(!same_file(&a, &d.join("b.key")));
        // A link loop does not hang.
        std::os::unix::fs::symlink("loop2", d.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", d.join("loop2")).unwrap();
        assert!(!same_file(&d.join("loop1"), &a));
    }

    #[test]
    fn keygen_refuses_one_file_for_both_halves_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let err = keygen("k-1", &p, &dir.path().join("./k"), false).unwrap_err();
        assert!(err.to_string().contains("are the same file"), "{err}");
        assert!(!p.exists());
        std::fs::write(&p, "old").unwrap();
        assert!(keygen("k-1", &p, &p, true).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        let (s, pb) = (dir.path().join("s"), dir.path().join("p"));
        assert_eq!(keygen("k-1", &s, &pb, false).unwrap(), 0);
        let sk = SecretKey::parse(&std::fs::read_to_string(&s).unwrap()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&pb).unwrap(),
            sk.public_key().to_string()
        );
    }

    #[test]
    fn rfc3339_formats_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_072_000);
        assert_eq!(rfc3339(t), "2025-11-25T12:00:00Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
