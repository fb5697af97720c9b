//! Test harness shared by the integration tests: a Garage server per test binary
//! ([`garage::Garage`]), an in-process s3s-fs server ([`s3s::S3sServer`]), a fault-injecting
//! proxy ([`faults::FaultProxy`]), an invariant checker that reads storage directly
//! ([`invariants`]), synthetic caches ([`graph`]) and the narscope and Nix commands ([`cli`]).
#![allow(dead_code)]

pub mod cli;
pub mod faults;
pub mod garage;
pub mod graph;
pub mod invariants;
pub mod nixfix;
pub mod s3s;

#[allow(unused_imports)]
pub use garage::Garage;
#[allow(unused_imports)]
pub use s3s::S3sServer;

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

/// A random lowercase hex string of `n` bytes.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom_fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn getrandom_fill(buf: &mut [u8]) {
    use std::io::Read;
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
    if ok.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8);
        }
    }
}

/// "N cores; CPU model", for benchmark headers.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores; {model}")
}
