//! Directories served over HTTP on 127.0.0.1, as Nix's HTTP binary caches are: a file:// cache
//! made by real Nix becomes `http://127.0.0.1:PORT`.
//!
//! [`PythonServer`] is `python3 -m http.server` (a plain static server, as an operator would put
//! in front of a directory); it stops when dropped.
//!
//! [`CacheServer`] is an in-process hyper server over a directory that behaves as the servers
//! narscope must cope with ([`ServeOptions`]): `Content-Encoding` on narinfos, `.ls` and NARs,
//! Basic auth, 503/429 for the first requests, NAR downloads redirected elsewhere, HEAD
//! refused. It records every request it gets, and stops when dropped.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `python3 -m http.server` serving one directory.
pub struct PythonServer {
    /// `http://127.0.0.1:PORT` (no trailing slash): the cache's URL.
    pub url: String,
    child: Child,
}

impl PythonServer {
    /// Serves `dir` on a free port of 127.0.0.1 and waits (up to 20 s) until it accepts
    /// connections. Panics with the reason when python3 is missing or the server does not come up.
    pub fn serve(dir: &Path) -> PythonServer {
        let port = super::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start python3 -m http.server: {e}"));
        let mut server = PythonServer {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("python3 -m http.server on port {port} exited: {status}");
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("python3 -m http.server on port {port} did not come up in 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a [`CacheServer`] behaves.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// `Content-Encoding` (`gzip`, `br`, `zstd`, `deflate`) for narinfos, `.ls` files and
    /// everything under `nar/`: the body is encoded so on each request.
    pub encoding: Option<&'static str>,
    /// Basic-auth credentials every request must carry (else 401 with `WWW-Authenticate`).
    pub basic_auth: Option<(String, String)>,
    /// The first this many requests are answered 503, then 429 (alternating), with
    /// `Retry-After: 0`.
    pub fail_first: usize,
    /// Requests for `nar/…` are redirected (302) to `/moved/nar/…`, which serves them.
    pub redirect_nars: bool,
    /// HEAD is answered 405.
    pub refuse_head: bool,
}

/// One request a [`CacheServer`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path, as requested.
    pub path: String,
    /// The status answered.
    pub status: u16,
}

/// An in-process HTTP server over one directory (see the module docs).
pub struct CacheServer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Served {
    dir: std::path::PathBuf,
    opts: ServeOptions,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    count: std::sync::atomic::AtomicUsize,
}

type Body = http_body_util::Full<bytes::Bytes>;

fn answer(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> hyper::Response<Body> {
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Body::new(body.into())).expect("a valid response")
}

impl Served {
    fn respond(
        &self,
        method: &hyper::Method,
        path: &str,
        auth: Option<&str>,
    ) -> hyper::Response<Body> {
        use base64::Engine;
        use std::sync::atomic::Ordering;
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        if n < self.opts.fail_first {
            let status = if n.is_multiple_of(2) { 503 } else { 429 };
            return answer(
                status,
                &[("retry-after", "0".into())],
                b"slow down".to_vec(),
            );
        }
        if let Some((user, password)) = &self.opts.basic_auth {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if auth != Some(want.as_str()) {
                return answer(
                    401,
                    &[("www-authenticate", "Basic realm=\"cache\"".into())],
                    b"unauthorized".to_vec(),
                );
            }
        }
        if *method == hyper::Method::HEAD && self.opts.refuse_head {
            return answer(405, &[("allow", "GET".into())], Vec::new());
        }
        let rel = path.trim_start_matches('/');
        let rel = match rel.strip_prefix("moved/") {
            Some(r) => r,
            None if self.opts.redirect_nars && rel.starts_with("nar/") => {
                return answer(302, &[("location", format!("/moved/{rel}"))], Vec::new());
            }
            None => rel,
        };
        if rel.is_empty()
            || rel
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return answer(404, &[], Vec::new());
        }
        let Ok(plain) = std::fs::read(self.dir.join(rel)) else {
            return answer(404, &[], b"not found".to_vec());
        };
        let encode = rel.ends_with(".narinfo") || rel.ends_with(".ls") || rel.starts_with("nar/");
        let (body, mut headers) = match self.opts.encoding.filter(|_| encode) {
            None => (plain, Vec::new()),
            Some(enc) => (
                encoded(enc, &plain),
                vec![("content-encoding", enc.to_string())],
            ),
        };
        headers.push(("content-length", body.len().to_string()));
        if *method == hyper::Method::HEAD {
            // The length of what a GET would send, without the body.
            let mut r = answer(200, &headers, Vec::new());
            r.headers_mut().insert(
                "content-length",
                body.len().to_string().parse().expect("a header value"),
            );
            return r;
        }
        answer(200, &headers, body)
    }
}

fn encoded(enc: &str, plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match enc {
        "deflate" => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(plain).expect("deflate");
            z.finish().expect("deflate")
        }
        other => {
            let c: narscope::compression::Compression = other
                .parse()
                .unwrap_or_else(|e| panic!("encoding {other}: {e}"));
            let mut out = Vec::new();
            narscope::compression::compress_all(c, None, plain, &mut out)
                .unwrap_or_else(|e| panic!("encoding {other}: {e}"));
            out
        }
    }
}

impl CacheServer {
    /// Serves `dir` on a free port of 127.0.0.1, on a thread of its own, as `opts` says.
    pub fn serve(dir: &Path, opts: ServeOptions) -> CacheServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let port = std_listener.local_addr().expect("local_addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let served = std::sync::Arc::new(Served {
            dir: dir.to_path_buf(),
            opts,
            seen: seen.clone(),
            count: std::sync::atomic::AtomicUsize::new(0),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the test server");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                loop {
                    let socket = tokio::select! {
                        _ = &mut stopped => return,
                        r = listener.accept() => match r {
                            Ok((s, _)) => s,
                            Err(_) => continue,
                        },
                    };
                    let served = served.clone();
                    let service =
                        hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let served = served.clone();
                                async move {
                                    let auth = req
                                        .headers()
                                        .get("authorization")
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_string);
                                    let path = req.uri().path().to_string();
                                    let r = served.respond(req.method(), &path, auth.as_deref());
                                    served.seen.lock().unwrap_or_else(|e| e.into_inner()).push(
                                        Seen {
                                            method: req.method().to_string(),
                                            path,
                                            status: r.status().as_u16(),
                                        },
                                    );
                                    Ok::<_, std::convert::Infallible>(r)
                                }
                            },
                        );
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                            .await;
                    });
                }
            });
        });
        CacheServer {
            url: format!("http://127.0.0.1:{port}"),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
