//! An in-process s3s-fs server (real SigV4, conditional PUT) on a random local port. It lives on
//! the calling test's tokio runtime and stops with it.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// A running s3s-fs server with one bucket.
pub struct S3sServer {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created at startup (a directory under `root`).
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// The server's storage; `root/<bucket>` is the bucket, itself a valid file:// cache.
    pub root: tempfile::TempDir,
}

/// Starts a server on 127.0.0.1:0 with bucket `narscope-test`.
pub async fn start() -> S3sServer {
    let root = tempfile::Builder::new()
        .prefix("narscope-s3s-")
        .tempdir()
        .expect("temp dir for s3s-fs");
    let bucket = "narscope-test".to_string();
    std::fs::create_dir_all(root.path().join(&bucket)).expect("create the bucket directory");
    let access_key = format!("AKS3S{}", super::random_hex(6));
    let secret_key = super::random_hex(20);
    let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s_fs::FileSystem::new");
    let service = {
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        b.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    S3sServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket,
        access_key,
        secret_key,
        root,
    }
}

impl S3sServer {
    /// `s3://bucket[/prefix]?endpoint=…&region=us-east-1&addressing-style=path`.
    pub fn url(&self, prefix: &str) -> String {
        self.url_for(&self.bucket, prefix)
    }

    /// Like [`S3sServer::url`] for another bucket of this server.
    pub fn url_for(&self, bucket: &str, prefix: &str) -> String {
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
}
