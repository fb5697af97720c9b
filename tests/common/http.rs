//! Directories served over HTTP on 127.0.0.1, as Nix's HTTP binary caches are: a file:// cache
//! made by real Nix becomes `http://127.0.0.1:PORT`.
//!
//! [`PythonServer`] is `python3 -m http.server` (a plain static server, as an operator would put
//! in front of a directory); it stops when dropped.

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
