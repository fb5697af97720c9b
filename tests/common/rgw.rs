//! One throw-away Ceph RADOS Gateway per test run (a real single-host Ceph cluster from
//! Debian's `radosgw ceph-mon ceph-osd ceph-common`), for what Garage does not have: bucket
//! versioning, lifecycle rules that really run, object lock, and byte counts that include
//! hidden versions (`radosgw-admin bucket stats`), as B2 bills them.
//!
//! The cluster is started by `tests/common/rgw/start.sh` under a `sh` watchdog that stops the
//! daemons and removes the temp dir once the test process is gone. Credentials never enter the
//! test process's environment: children get them from [`Rgw::env`].
//!
//! RGW 16.2 quirks the tests meet: `If-None-Match: *` is ignored on versioned buckets;
//! `If-Match` with a quoted ETag always answers 412; HEAD on a delete marker answers 404.
//!
//! `NARSCOPE_SKIP_RGW=1` skips the RGW tests ([`Rgw::try_shared`]).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use narscope::cache::Cache;
use narscope::storage::s3::{S3Options, S3Store};
use narscope::storage::{CacheUrl, Store};

/// A running RADOS Gateway.
pub struct Rgw {
    /// S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key id of the test user (owner of every bucket made here).
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    dir: PathBuf,
}

static SHARED: OnceLock<Rgw> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

const INSTALL_HINT: &str = "install Debian's `radosgw ceph-mon ceph-osd ceph-common` (as \
     .ci/test.sh does), or set NARSCOPE_SKIP_RGW=1 to skip the Ceph RGW tests";

impl Rgw {
    /// The gateway of this test binary, started on first use (about 15 s). Panics with install
    /// advice when Ceph is not installed.
    pub fn shared() -> &'static Rgw {
        SHARED.get_or_init(Rgw::start)
    }

    /// `None` when `NARSCOPE_SKIP_RGW=1` (the caller should return early), else
    /// [`Rgw::shared`].
    pub fn try_shared() -> Option<&'static Rgw> {
        if std::env::var("NARSCOPE_SKIP_RGW").is_ok_and(|v| v == "1") {
            eprintln!("NARSCOPE_SKIP_RGW=1: skipping a Ceph RGW test");
            return None;
        }
        Some(Rgw::shared())
    }

    fn start() -> Rgw {
        for bin in ["radosgw", "ceph-mon", "ceph-osd", "ceph", "radosgw-admin"] {
            let found = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {bin}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(found, "`{bin}` not found: {INSTALL_HINT}");
        }
        let dir = tempfile::Builder::new()
            .prefix("narscope-rgw-")
            .tempdir()
            .expect("create a temp dir for Ceph")
            .keep();
        let ports = super::free_ports(2);
        let (rgw_port, mon_port) = (ports[0], ports[1]);
        let access_key = format!("RGW{}", super::random_hex(8).to_uppercase());
        let secret_key = super::random_hex(20);
        let start = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/rgw/start.sh");
        let out = Command::new("bash")
            .arg(start)
            .env("CEPH_DIR", &dir)
            .env("RGW_PORT", rgw_port.to_string())
            .env("MON_PORT", mon_port.to_string())
            .env("S3_ACCESS_KEY", &access_key)
            .env("S3_SECRET_KEY", &secret_key)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {start}: {e}"));
        // Watchdog: stop the daemons and remove the directory once the test process is gone
        // (statics are never dropped). It is started even when the start failed halfway.
        let script = r#"
while kill -0 "$NS_WATCH_PID" 2>/dev/null; do sleep 0.5; done
for p in client.rgw.s3 osd.0 mon.a; do
  [ -f "$NS_DIR/run/$p.pid" ] && kill "$(cat "$NS_DIR/run/$p.pid")" 2>/dev/null
done
sleep 2
for p in client.rgw.s3 osd.0 mon.a; do
  [ -f "$NS_DIR/run/$p.pid" ] && kill -9 "$(cat "$NS_DIR/run/$p.pid")" 2>/dev/null
done
rm -rf "$NS_DIR"
"#;
        // The watchdog must outlive us, so it is deliberately never waited for.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("NS_DIR", &dir)
            .env("NS_WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Ceph watchdog");
        assert!(
            out.status.success(),
            "starting Ceph RGW failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let rgw = Rgw {
            endpoint: format!("http://127.0.0.1:{rgw_port}"),
            access_key,
            secret_key,
            dir,
        };
        rgw.wait_ready();
        rgw
    }

    /// Waits until the gateway answers ListBuckets.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        // Its own runtime on its own thread: the caller may be inside a tokio test.
        let answers = || {
            std::thread::scope(|t| {
                t.spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime")
                        .block_on(async { self.client().list_buckets().send().await.is_ok() })
                })
                .join()
                .unwrap_or(false)
            })
        };
        loop {
            if answers() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Ceph RGW at {} did not answer within 90 s; logs in {}",
                self.endpoint,
                self.dir.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `radosgw-admin -c <conf> <args>` and returns its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let conf = self.dir.join("ceph.conf");
        let out = Command::new("radosgw-admin")
            .arg("-c")
            .arg(&conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run radosgw-admin");
        assert!(
            out.status.success(),
            "radosgw-admin {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The bytes the bucket stores, noncurrent versions included, as `radosgw-admin bucket
    /// stats` reports them (`usage."rgw.main".size`), and the number of objects it counts.
    pub fn stored(&self, bucket: &str) -> (u64, u64) {
        let out = self.admin(&["bucket", "stats", "--bucket", bucket]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("bucket stats: {e}: {out}"));
        let main = &v["usage"]["rgw.main"];
        (
            main["size"].as_u64().unwrap_or(0),
            main["num_objects"].as_u64().unwrap_or(0),
        )
    }

    /// An S3 client of the test user (path-style; checksums only where required, as RGW 16.2
    /// refuses aws-chunked trailers), for setting up what narscope does not write: versioning,
    /// lifecycle rules, object lock, stale multipart uploads.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .credentials_provider(Credentials::new(
                &self.access_key,
                &self.secret_key,
                None,
                None,
                "rgw-test",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn bucket_name() -> String {
        format!(
            "t{}-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::Relaxed),
            super::random_hex(3)
        )
    }

    /// Creates a new empty, unversioned bucket with a unique name.
    pub async fn fresh_bucket(&self) -> String {
        let name = Rgw::bucket_name();
        self.client()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
        name
    }

    /// Creates a new bucket with versioning enabled.
    pub async fn versioned_bucket(&self) -> String {
        let name = self.fresh_bucket().await;
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.client()
            .put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("enable versioning on {name}: {e:?}"));
        name
    }

    /// Creates a new bucket with object lock enabled (and so versioning), and a default
    /// GOVERNANCE retention of `days` days when given.
    pub async fn locked_bucket(&self, days: Option<i32>) -> String {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
            ObjectLockRule,
        };
        let name = Rgw::bucket_name();
        self.client()
            .create_bucket()
            .bucket(&name)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create locked bucket {name}: {e:?}"));
        if let Some(days) = days {
            let rule = ObjectLockRule::builder()
                .default_retention(
                    DefaultRetention::builder()
                        .mode(ObjectLockRetentionMode::Governance)
                        .days(days)
                        .build(),
                )
                .build();
            self.client()
                .put_object_lock_configuration()
                .bucket(&name)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .rule(rule)
                        .build(),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("object lock on {name}: {e:?}"));
        }
        name
    }

    /// `s3://bucket[/prefix]?endpoint=…&region=us-east-1&addressing-style=path`.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        let path = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        format!(
            "s3://{bucket}{path}?endpoint={}&region=us-east-1&addressing-style=path",
            self.endpoint
        )
    }

    /// Environment for child processes: credentials, region, IMDS off.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// Opens the store `url` names, signing with the test user's key (the URL may name a
    /// proxy in front of this gateway).
    pub async fn open(&self, url: &str) -> Arc<dyn Store> {
        let CacheUrl::S3(u) = CacheUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}")) else {
            panic!("{url} is not an s3:// URL");
        };
        let opts = S3Options::from_params(&u.params)
            .with_static_credentials(&self.access_key, &self.secret_key);
        Arc::new(
            S3Store::connect(u, opts)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}")),
        )
    }

    /// The cache at `url`, opened through [`Rgw::open`].
    pub async fn cache(&self, url: &str) -> Cache {
        let store = self.open(url).await;
        Cache::from_store(CacheUrl::parse(url).expect("parsed by open"), store)
    }
}
