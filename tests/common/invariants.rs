//! An invariant checker that reads a cache's storage directly: a file:// directory with
//! `std::fs`, a bucket with its own AWS SDK client (never through narscope's storage layer,
//! never through a fault proxy), and parses narinfos with its own few lines of code.
//!
//! What must hold after (and, polled, during) any run of any job:
//! - every narinfo's NAR (its `URL`) exists;
//! - every reference of a narinfo has a narinfo;
//! - every signature by a trusted key verifies;
//! - (against an earlier snapshot) every path in the closure of a pin that was in the cache
//!   is still there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;

/// Where a cache's objects are.
#[derive(Clone, Debug)]
pub enum Source {
    /// A file:// cache directory.
    Dir(PathBuf),
    /// A bucket (below a prefix, `""` or ending in `/`).
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
        access_key: String,
        secret_key: String,
    },
}

/// One narinfo, as far as the checks need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub store_path: String,
    pub url: String,
    pub nar_hash: String,
    pub nar_size: String,
    /// Base names.
    pub references: Vec<String>,
    pub sigs: Vec<String>,
}

/// Every key of the cache and the narinfos and pins read.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub keys: BTreeSet<String>,
    /// By narinfo key; `Err` when it does not parse.
    pub narinfos: BTreeMap<String, Result<Info, String>>,
    /// Pin name → store paths.
    pub pins: BTreeMap<String, Vec<String>>,
}

fn parse(text: &str) -> Result<Info, String> {
    let mut i = Info::default();
    for line in text.lines() {
        let (k, v) = line
            .split_once(": ")
            .ok_or_else(|| format!("no ': ' in line {line:?}"))?;
        match k {
            "StorePath" => i.store_path = v.to_string(),
            "URL" => i.url = v.to_string(),
            "NarHash" => i.nar_hash = v.to_string(),
            "NarSize" => i.nar_size = v.to_string(),
            "References" => {
                i.references = v.split_whitespace().map(str::to_string).collect();
            }
            "Sig" => i.sigs.push(v.to_string()),
            _ => {}
        }
    }
    if i.store_path.is_empty() || i.url.is_empty() {
        return Err("no StorePath or URL".into());
    }
    Ok(i)
}

fn hash_part(base_or_path: &str) -> &str {
    let base = base_or_path.rsplit('/').next().unwrap_or(base_or_path);
    base.get(..32).unwrap_or(base)
}

impl Snapshot {
    /// Reads the whole cache now.
    pub fn take(src: &Source) -> Snapshot {
        let objects: Vec<(String, Option<Vec<u8>>)> = match src {
            Source::Dir(d) => read_dir(d),
            Source::S3 { .. } => read_s3(src),
        };
        let mut s = Snapshot::default();
        for (key, body) in objects {
            if let Some(b) = body {
                let text = String::from_utf8_lossy(&b).into_owned();
                if let Some(name) = key.strip_prefix("narscope/roots/") {
                    let paths = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect();
                    s.pins.insert(name.to_string(), paths);
                } else {
                    s.narinfos.insert(key.clone(), parse(&text));
                }
            }
            s.keys.insert(key);
        }
        s
    }

    /// The closure of `path` through References, by hash part, as far as narinfos exist.
    pub fn closure(&self, path: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![hash_part(path).to_string()];
        while let Some(h) = stack.pop() {
            if !seen.insert(h.clone()) {
                continue;
            }
            if let Some(Ok(i)) = self.narinfos.get(&format!("{h}.narinfo")) {
                stack.extend(i.references.iter().map(|r| hash_part(r).to_string()));
            }
        }
        seen
    }

    /// Whether `path`'s narinfo is there.
    pub fn has(&self, path: &str) -> bool {
        self.keys.contains(&format!("{}.narinfo", hash_part(path)))
    }

    /// What is wrong now (empty when every invariant holds). `trusted` are public keys
    /// (`name:base64`); signatures by other keys are not checked.
    pub fn violations(&self, trusted: &[String]) -> Vec<String> {
        let keys: BTreeMap<String, ed25519_dalek::VerifyingKey> = trusted
            .iter()
            .filter_map(|t| {
                let (name, b64) = t.split_once(':')?;
                let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                let arr: [u8; 32] = raw.try_into().ok()?;
                Some((
                    name.to_string(),
                    ed25519_dalek::VerifyingKey::from_bytes(&arr).ok()?,
                ))
            })
            .collect();
        let mut v = Vec::new();
        for (key, info) in &self.narinfos {
            let Ok(i) = info else { continue };
            if !self.keys.contains(&i.url) {
                v.push(format!("{key}: its NAR {} is missing", i.url));
            }
            for r in &i.references {
                if !self.keys.contains(&format!("{}.narinfo", hash_part(r))) {
                    v.push(format!("{key}: its reference {r} has no narinfo"));
                }
            }
            let dir = i.store_path.rsplit_once('/').map(|x| x.0).unwrap_or("");
            let refs: Vec<String> = i.references.iter().map(|r| format!("{dir}/{r}")).collect();
            let fp = format!(
                "1;{};{};{};{}",
                i.store_path,
                i.nar_hash,
                i.nar_size,
                refs.join(",")
            );
            for sig in &i.sigs {
                let Some((name, b64)) = sig.split_once(':') else {
                    continue;
                };
                let Some(k) = keys.get(name) else { continue };
                let ok = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| <[u8; 64]>::try_from(b).ok())
                    .map(|b| ed25519_dalek::Signature::from_bytes(&b))
                    .is_some_and(|s| k.verify_strict(fp.as_bytes(), &s).is_ok());
                if !ok {
                    v.push(format!("{key}: the signature by {name} does not verify"));
                }
            }
        }
        v
    }

    /// What `self` lost of what the pins of `before` kept: every path in the closure of a
    /// pinned path that was in the cache then must still be there.
    pub fn lost_pinned(&self, before: &Snapshot) -> Vec<String> {
        let mut lost = Vec::new();
        for (name, paths) in &before.pins {
            for p in paths {
                if !before.has(p) {
                    continue;
                }
                for h in before.closure(p) {
                    let k = format!("{h}.narinfo");
                    if before.keys.contains(&k) && !self.keys.contains(&k) {
                        lost.push(format!("pin {name}: {k} (in the closure of {p}) is gone"));
                    }
                }
            }
        }
        lost
    }
}

/// What is wrong at this instant: a snapshot is not atomic (a deletion in progress can show
/// a narinfo whose NAR went after it was read), so each missing object found is confirmed by
/// looking again: the narinfo still there, its NAR or reference still missing, the narinfo
/// still there.
pub fn violations_now(src: &Source, trusted: &[String]) -> Vec<String> {
    let snap = Snapshot::take(src);
    let mut real = Vec::new();
    for (key, info) in &snap.narinfos {
        let Ok(i) = info else { continue };
        let mut wanted: Vec<(String, String)> = Vec::new();
        if !snap.keys.contains(&i.url) {
            wanted.push((
                i.url.clone(),
                format!("{key}: its NAR {} is missing", i.url),
            ));
        }
        for r in &i.references {
            let k = format!("{}.narinfo", hash_part(r));
            if !snap.keys.contains(&k) {
                wanted.push((k, format!("{key}: its reference {r} has no narinfo")));
            }
        }
        for (missing, what) in wanted {
            if exists(src, key) && !exists(src, &missing) && exists(src, key) {
                real.push(what);
            }
        }
    }
    // Signatures are checked on the snapshot's texts (a narinfo is replaced whole).
    real.extend(
        snap.violations(trusted)
            .into_iter()
            .filter(|v| v.contains("does not verify")),
    );
    real
}

/// Whether `key` exists now.
pub fn exists(src: &Source, key: &str) -> bool {
    match src {
        Source::Dir(d) => d.join(key).is_file(),
        Source::S3 { .. } => read_s3_one(src, key),
    }
}

fn read_s3_one(src: &Source, key: &str) -> bool {
    let Source::S3 {
        endpoint,
        bucket,
        prefix,
        access_key,
        secret_key,
    } = src
    else {
        return false;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the checker");
    rt.block_on(async {
        s3_client(endpoint, access_key, secret_key)
            .head_object()
            .bucket(bucket)
            .key(format!("{prefix}{key}"))
            .send()
            .await
            .is_ok()
    })
}

fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            access_key, secret_key, None, None, "checker",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn read_dir(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
                continue;
            }
            let key = p
                .strip_prefix(root)
                .map(|k| k.to_string_lossy().into_owned())
                .unwrap_or_default();
            let wanted = key.ends_with(".narinfo") && !key.contains('/')
                || key.starts_with("narscope/roots/");
            // A file deleted meanwhile simply is not there.
            let body = if wanted { std::fs::read(&p).ok() } else { None };
            if wanted && body.is_none() {
                continue;
            }
            out.push((key, body));
        }
    }
    out
}

fn read_s3(src: &Source) -> Vec<(String, Option<Vec<u8>>)> {
    let Source::S3 {
        endpoint,
        bucket,
        prefix,
        access_key,
        secret_key,
    } = src
    else {
        return Vec::new();
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the checker");
    rt.block_on(async {
        let client = s3_client(endpoint, access_key, secret_key);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .expect("the checker lists the bucket");
            for o in page.contents() {
                let full = o.key().unwrap_or_default();
                let key = full
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(full)
                    .to_string();
                let wanted = key.ends_with(".narinfo") && !key.contains('/')
                    || key.starts_with("narscope/roots/");
                let body = if wanted {
                    match client.get_object().bucket(bucket).key(full).send().await {
                        Ok(g) => match g.body.collect().await {
                            Ok(b) => Some(b.into_bytes().to_vec()),
                            Err(_) => None,
                        },
                        Err(_) => None,
                    }
                } else {
                    None
                };
                if wanted && body.is_none() {
                    continue;
                }
                out.push((key, body));
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out
    })
}
