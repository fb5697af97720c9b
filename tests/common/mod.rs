//! The harness every integration test module (and every bench, through `#[path]`) shares:
//! - [`cmd`]: the narscope command, isolated from the machine, and `run`/`ok` with a timeout;
//! - [`nix`]: real Nix with one set of settings, and the skip-Nix check;
//! - [`garage::Garage`]: one Garage server per run, credentials passed explicitly;
//! - [`rgw::Rgw`]: one single-host Ceph RADOS Gateway per run (versioning, lifecycle, object
//!   lock, stored bytes including hidden versions);
//! - [`s3s::S3sServer`]: an in-process s3s-fs server; [`faults::FaultProxy`]: a
//!   fault-injecting proxy; [`invariants`]: a checker that reads storage directly;
//! - [`http`]: directories served over HTTP on 127.0.0.1 (HTTP binary caches);
//! - [`graph`]: synthetic caches with known answers; [`nixfix`]: caches made by real Nix;
//! - [`scratch`]: a module's scratch root and the narscope/Nix commands run under it;
//! - [`fs`], [`upload`], [`rng`]: copying, listing and uploading trees; seeded randomness.

pub mod cmd;
pub mod faults;
pub mod fs;
pub mod garage;
pub mod graph;
pub mod http;
pub mod invariants;
pub mod nix;
pub mod nixfix;
pub mod rgw;
pub mod rng;
pub mod s3s;
pub mod scratch;
pub mod upload;

pub use garage::Garage;
// The benches include this module (`#[path]`) and start no gateway.
#[allow(unused_imports)]
pub use rgw::Rgw;

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test server).
pub fn free_port() -> u16 {
    free_ports(1).first().copied().unwrap_or(0)
}

/// `n` distinct free TCP ports on 127.0.0.1 (all bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// `n` random bytes from the operating system (`getrandom`): the one source of the
/// random tags, bucket names and secrets of the tests.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).unwrap_or_else(|e| panic!("getrandom: {e}"));
    buf
}

/// A random lowercase hex string of `n` bytes.
pub fn random_hex(n: usize) -> String {
    random_bytes(n).iter().map(|b| format!("{b:02x}")).collect()
}
