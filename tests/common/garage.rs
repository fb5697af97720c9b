//! One throw-away single-node Garage per test run (the integration binary starts it once).
//!
//! Garage runs under a small `sh` watchdog that kills it (and removes its temp dir) once the
//! test process is gone, because statics are never dropped. Its credentials never enter the
//! test process's environment: child processes get them from [`Garage::env`]
//! (`Command::envs`), in-process stores from [`Garage::open`] or
//! `S3Options::with_static_credentials(&g.access_key, &g.secret_key)`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use narscope::cache::Cache;
use narscope::storage::s3::{S3Options, S3Store};
use narscope::storage::{self, CacheUrl, Store};

/// A running Garage server.
pub struct Garage {
    /// S3 API endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Anonymous website read of the default bucket, `http://localhost:WEBPORT`.
    pub web_url: String,
    /// The bucket created at startup (website access enabled, aliased as `localhost`).
    pub default_bucket: String,
    /// Access key id (owner of every bucket made here; may create buckets).
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    bin: PathBuf,
    dir: PathBuf,
    config: PathBuf,
}

static SHARED: OnceLock<Garage> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

const INSTALL_HINT: &str = "install it with `cargo install garage --version 2.5.0 --locked \
     --no-default-features --features bundled-libs,lmdb,sqlite` (about 10 min), or point GARAGE_BIN at \
     a garage binary; set NARSCOPE_SKIP_GARAGE=1 to skip the Garage tests";

/// Garage's metadata engine: `NARSCOPE_GARAGE_DB` (`lmdb` or `sqlite`), default `lmdb`, the
/// engine Garage recommends.
fn db_engine() -> String {
    std::env::var("NARSCOPE_GARAGE_DB").unwrap_or_else(|_| "lmdb".to_string())
}

fn find_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("garage");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let home = std::env::var_os("HOME")?;
    let c = Path::new(&home).join(".cargo/bin/garage");
    c.is_file().then_some(c)
}

impl Garage {
    /// The Garage of this test binary, started on first use. Panics (with install advice) if
    /// no `garage` binary is found.
    pub fn shared() -> &'static Garage {
        SHARED.get_or_init(Garage::start)
    }

    /// `None` when `NARSCOPE_SKIP_GARAGE=1` (the caller should return early), else
    /// [`Garage::shared`].
    pub fn try_shared() -> Option<&'static Garage> {
        if std::env::var("NARSCOPE_SKIP_GARAGE").is_ok_and(|v| v == "1") {
            eprintln!("NARSCOPE_SKIP_GARAGE=1: skipping a Garage test");
            return None;
        }
        Some(Garage::shared())
    }

    fn start() -> Garage {
        let Some(bin) = find_bin() else {
            panic!("`garage` not found (GARAGE_BIN, PATH, ~/.cargo/bin): {INSTALL_HINT}");
        };
        let dir = tempfile::Builder::new()
            .prefix("narscope-garage-")
            .tempdir()
            .expect("create a temp dir for Garage")
            .keep();
        std::fs::create_dir_all(dir.join("meta")).expect("mkdir meta");
        std::fs::create_dir_all(dir.join("data")).expect("mkdir data");
        let ports = super::free_ports(4);
        let [s3, rpc, web, admin] = [ports[0], ports[1], ports[2], ports[3]];
        let config = dir.join("garage.toml");
        let toml = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "{engine}"
replication_factor = 1
metadata_fsync = false
data_fsync = false
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[s3_web]
bind_addr = "127.0.0.1:{web}"
root_domain = ".web.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "narscope-test-admin"
metrics_token = "narscope-test-metrics"
"#,
            d = dir.display(),
            engine = db_engine(),
            secret = super::random_hex(32),
        );
        std::fs::write(&config, toml).expect("write garage.toml");
        let access_key = format!("GK{}", super::random_hex(12));
        let secret_key = super::random_hex(32);
        let default_bucket = "narscope-default".to_string();

        // Watchdog: start garage, wait while both the test process and garage live, then stop
        // garage; remove the temp dir unless garage died on its own (keep its log then).
        let script = r#"
"$NS_GARAGE_BIN" server --single-node --default-bucket >"$NS_DIR/garage.log" 2>&1 &
G=$!
echo "$G" >"$NS_DIR/garage.pid"
while kill -0 "$NS_WATCH_PID" 2>/dev/null && kill -0 "$G" 2>/dev/null; do sleep 0.5; done
if kill -0 "$NS_WATCH_PID" 2>/dev/null; then exit 1; fi
kill "$G" 2>/dev/null
wait "$G" 2>/dev/null
rm -rf "$NS_DIR"
"#;
        // The watchdog must outlive us, so it is deliberately never waited for.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("NS_GARAGE_BIN", &bin)
            .env("NS_DIR", &dir)
            .env("NS_WATCH_PID", std::process::id().to_string())
            .env("GARAGE_CONFIG_FILE", &config)
            .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &secret_key)
            .env("GARAGE_DEFAULT_BUCKET", &default_bucket)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh for {}: {e}", bin.display()));

        let g = Garage {
            endpoint: format!("http://127.0.0.1:{s3}"),
            web_url: format!("http://localhost:{web}"),
            default_bucket,
            access_key,
            secret_key,
            bin,
            dir,
            config,
        };
        g.wait_ready(s3);
        g.cli_retry(&["bucket", "website", "--allow", &g.default_bucket]);
        g.cli_retry(&["bucket", "alias", &g.default_bucket, "localhost"]);
        g.cli_retry(&["key", "allow", "--create-bucket", &g.access_key]);
        g
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("garage.log")).unwrap_or_default()
    }

    fn wait_ready(&self, s3_port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port_up = std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_ok();
            if port_up && self.cli(&["status"]).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "Garage ({}) did not become ready within 60 s; log:\n{}",
                    self.bin.display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `garage <args>` against this server.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .args(args)
            .env("GARAGE_CONFIG_FILE", &self.config)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "garage {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    }

    fn cli_retry(&self, args: &[&str]) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            match self.cli(args) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{last}\nGarage log:\n{}", self.log());
    }

    /// Creates a new empty bucket with a unique name, owned by [`Garage::access_key`].
    pub fn fresh_bucket(&self) -> String {
        let name = format!(
            "t{}-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::Relaxed),
            super::random_hex(3)
        );
        self.cli_retry(&["bucket", "create", &name]);
        self.cli_retry(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &name,
            "--key",
            &self.access_key,
        ]);
        name
    }

    /// A second access key (id, secret) with no permission on any bucket (created once).
    pub fn unprivileged_key(&self) -> (String, String) {
        static KEY: OnceLock<(String, String)> = OnceLock::new();
        KEY.get_or_init(|| {
            let id = format!("GK{}", super::random_hex(12));
            let secret = super::random_hex(32);
            self.cli_retry(&["key", "import", "--yes", "-n", "unprivileged", &id, &secret]);
            (id, secret)
        })
        .clone()
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

    /// Opens the store `url` names as `narscope` would (`storage::open`: the multipart bounds
    /// from the URL's parameters), signing S3 requests with this server's access key; the URL
    /// may name this server or a proxy in front of it. A file:// URL opens as usual.
    pub async fn open(&self, url: &str) -> Arc<dyn Store> {
        match CacheUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}")) {
            CacheUrl::S3(u) => {
                let opts = S3Options::from_params(&u.params)
                    .with_static_credentials(&self.access_key, &self.secret_key);
                Arc::new(
                    S3Store::connect(u, opts)
                        .await
                        .unwrap_or_else(|e| panic!("{url}: {e}")),
                )
            }
            file => storage::open(&file)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}")),
        }
    }

    /// The cache at `url`, opened through [`Garage::open`].
    pub async fn cache(&self, url: &str) -> Cache {
        let store = self.open(url).await;
        Cache::from_store(CacheUrl::parse(url).expect("parsed by open"), store)
    }
}
