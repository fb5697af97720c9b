//! Upstream benchmark: prints figures, asserts nothing about time.
//!
//!   cargo bench --bench upstream
//!
//! 10,000 synthetic signed narinfos in a file:// cache, served over HTTP on 127.0.0.1, are
//! asked about with [`Upstreams::check_all`] (what `push --upstream` does for a closure): the
//! time for all of them, and requests per second. Two servers in the same run:
//! `python3 -m http.server` (what the tests use) and a small static-file server on hyper in
//! this process (so that the figure is narscope's, not python's), then the same directory as a
//! file:// upstream for comparison. Every path must come back served (a check, not a timing).
//!
//! NARSCOPE_BENCH_UPSTREAM_PATHS changes the number of paths; NARSCOPE_BENCH_UPSTREAM_CONCURRENCY
//! the requests in flight (default: narscope's default concurrency);
//! NARSCOPE_BENCH_UPSTREAM_SERVERS which servers, in order (default `python,hyper,file`).

// The tests' harness; each benchmark uses a part of it.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
// Each benchmark prints some of these figures.
#[allow(dead_code)]
#[path = "measure.rs"]
mod measure;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use narscope::cache::Cache;
use narscope::nix::{SecretKey, StorePath, TrustedKeys};
use narscope::storage::CacheUrl;
use narscope::upstream::{Upstream, Upstreams};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Asks `url` about every path, `concurrency` at a time; prints and returns the seconds.
async fn measure(
    what: &str,
    url: &str,
    paths: &[StorePath],
    keys: &Arc<TrustedKeys>,
    concurrency: usize,
) -> f64 {
    let cache = Cache::open(&CacheUrl::parse(url).expect("url"))
        .await
        .expect("open");
    let ups = Upstreams::new(vec![Upstream {
        cache: Arc::new(cache),
        keys: keys.clone(),
    }]);
    // One request first: nix-cache-info is read once per upstream, not per path.
    let _ = ups.check(&paths[0]).await;
    let t = Instant::now();
    let answers = ups.check_all(paths, concurrency, &|_, _| {}).await;
    let secs = t.elapsed().as_secs_f64();
    let served = answers.iter().filter(|a| a.is_trusted()).count();
    assert_eq!(
        served,
        paths.len(),
        "{what}: every path is served ({:?})",
        answers.iter().find(|a| !a.is_trusted())
    );
    println!(
        "{what:<34} {:>6} paths  {secs:>7.3} s  {:>8.0} requests/s  (concurrency {concurrency})",
        paths.len(),
        paths.len() as f64 / secs
    );
    secs
}

/// A static-file HTTP/1.1 server on hyper (keep-alive), serving `dir` on 127.0.0.1 from its
/// own thread and runtime (so that it does not share the client's scheduler); returns its URL.
/// Runs until the process ends.
fn hyper_static(dir: PathBuf) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let url = hyper_serve(dir).await;
            tx.send(url).expect("url");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server up")
}

async fn hyper_serve(dir: PathBuf) -> String {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let dir = Arc::new(dir);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let dir = dir.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let dir = dir.clone();
                    async move {
                        let rel = req.uri().path().trim_start_matches('/').to_string();
                        let ok = !rel.contains("..");
                        let res = match ok.then(|| std::fs::read(dir.join(&rel))) {
                            Some(Ok(body)) => Response::new(Full::new(Bytes::from(body))),
                            _ => {
                                let mut r = Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = StatusCode::NOT_FOUND;
                                r
                            }
                        };
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    url
}

fn write_cache(dir: &Path, n: usize, key: &SecretKey) -> Vec<StorePath> {
    common::graph::write_graph(dir, n, 0x5eed_0016, key).paths
}

fn main() {
    let n = env_usize("NARSCOPE_BENCH_UPSTREAM_PATHS", 10_000);
    let concurrency = env_usize(
        "NARSCOPE_BENCH_UPSTREAM_CONCURRENCY",
        narscope::cache::DEFAULT_CONCURRENCY,
    );
    println!("upstream bench on {}", measure::machine());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("upstream");
    let key = SecretKey::generate("bench-up-1").expect("key");
    let paths = write_cache(&dir, n, &key);
    let keys: Arc<TrustedKeys> = Arc::new([key.public_key()].into_iter().collect());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let servers = std::env::var("NARSCOPE_BENCH_UPSTREAM_SERVERS")
        .unwrap_or_else(|_| "python,hyper,file".to_string());
    for server in servers.split(',') {
        match server {
            "python" => {
                let python = common::http::PythonServer::serve(&dir);
                rt.block_on(measure(
                    "python3 -m http.server (loopback)",
                    &python.url,
                    &paths,
                    &keys,
                    concurrency,
                ));
            }
            "hyper" => {
                let url = hyper_static(dir.clone());
                rt.block_on(measure(
                    "hyper static server (loopback)",
                    &url,
                    &paths,
                    &keys,
                    concurrency,
                ));
            }
            "file" => {
                rt.block_on(measure(
                    "file:// (no HTTP)",
                    &format!("file://{}", dir.display()),
                    &paths,
                    &keys,
                    concurrency,
                ));
            }
            other => panic!("NARSCOPE_BENCH_UPSTREAM_SERVERS: unknown server {other:?}"),
        }
    }
}
