//! narscope's integration tests, in one test binary (one link step, one Garage server per run).
//!
//! Each module is one area; run one with `cargo test --test integration <module>::`, e.g.
//! `cargo test --test integration gc_interop::`. The harness every module shares (the narscope
//! and Nix commands, Garage, s3s-fs, the fault proxy, the invariant checker, Nix-made fixtures)
//! lives in [`common`].

mod common;

// The `narscope` binary on file:// caches: the demo's verdicts, bad input, the small commands.
mod cli;
// `narscope copy` between file:// (made by real Nix) and Garage caches, verbatim, resumable.
mod copy;
// `narscope doctor` on Ceph RGW (lifecycle, versions, uploads, object lock, keys), Garage, file://.
mod doctor;
// Every job under random and targeted network faults on Garage, checked by the invariant checker.
mod faults;
// A file:// cache never leads narscope outside its directory through symbolic links.
mod file_links;
// The closure gate (`verify -r`) on Nix-made closures, file:// and HTTP, with upstreams.
mod gate;
// Garbage collection on file:// and Garage, refereed by known graphs and by real Nix.
mod gc_interop;
// gc retention policies (--keep-versions, --max-size) on a Nix-made file:// cache, read by Nix.
mod gc_retention;
// Deletion on versioned buckets (Ceph RGW): reversible gc, restore, purge, --permanent, object lock.
mod gc_versioned;
// HTTP(S) caches (Nix-made caches served on 127.0.0.1): verdicts as file:// and Nix, encodings, netrc.
mod http_cache;
// Hostile caches: decompression bombs, oversized objects, non-NARs, existing pull targets.
mod hostile;
// push, pull, sign and delete against real Nix 2.8 and Garage.
mod jobs_interop;
// Where narscope follows Nix 2.8 rather than its own rules (case hack, misnamed narinfos, keys).
mod nix_deviations;
// narscope's verdicts, listings and keys agree with real Nix 2.8 on Nix-made caches.
mod nix_interop;
// S3 object parameters (Content-Encoding, storage class, multipart) on Garage, read by Nix.
mod s3_params;
// What must never be lost under bad input and races (malformed narinfos, pins, leases, kills).
mod safety;
// Secret keys are never shown, wherever narscope reads a public key.
mod secrets;
// Signing retries on a concurrent write with compare-and-swap (file://, s3s-fs).
mod sign_cas;
// One storage contract for file://, Garage and s3s-fs, plus error quality against real servers.
mod storage_contract;
// The S3 backend under network faults: retries, resumed streams, MD5 checks, clear failures.
mod storage_faults;
// A server that throttles (503 SlowDown above N requests/s): narscope slows down, loses nothing.
mod throttle;
// The dashboard end to end in tmux against the demo cache on Garage.
mod tui_e2e;
mod tui_plans;
// Upstream-aware push, info and gc against a Nix-made upstream, realised by Nix 2.8.
mod upstream;
// `info` on versioned RGW (noncurrent versions, delete markers by kind) and unversioned Garage.
mod versions;
// Nix's write parameters in the cache URL, with `nix copy` writing the reference cache.
mod rgw_versions;
mod url_params;
