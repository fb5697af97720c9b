//! A synthetic index shared by the benchmarks: `n` rows with pseudo-random names, sizes,
//! verdicts and references to older rows (a DAG, as in a real cache).

#![allow(dead_code)]

use narscope::index::{Comp, Index, NarInfoSummary, RowData, RowStatus, TextRef};
use narscope::nix::nix32;

use crate::common::rng::Rng;

pub const NAMES: &[&str] = &[
    "glibc",
    "bash",
    "coreutils",
    "python3",
    "perl",
    "openssl",
    "zlib",
    "curl",
    "gcc",
    "llvm",
    "rustc",
    "nodejs",
    "hello",
    "jq",
    "ripgrep",
    "systemd",
    "linux",
    "firefox",
    "git",
    "vim",
];

pub fn hash_part(i: u64) -> String {
    let mut d = [0u8; 20];
    d[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    d[8..16].copy_from_slice(
        &(i ^ 0xDEAD_BEEF)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .to_le_bytes(),
    );
    d[16..].copy_from_slice(&(i as u32).to_le_bytes());
    nix32::encode(&d)
}

pub fn synthetic_index(n: u64) -> Index {
    let mut idx = Index::new("file:///bench", [0; 32]);
    let mut rng = Rng(0x1234_5678);
    let statuses = [
        RowStatus::Trusted,
        RowStatus::Trusted,
        RowStatus::Trusted,
        RowStatus::Unsigned,
        RowStatus::Untrusted,
        RowStatus::ContentAddressed,
    ];
    for i in 0..n {
        let h = hash_part(i);
        let name = format!(
            "{}-{}.{}.{}",
            NAMES[(rng.next() % NAMES.len() as u64) as usize],
            i % 97,
            rng.next() % 10,
            i
        );
        let refs: Vec<(String, String)> = (0..(rng.next() % 8))
            .filter(|_| i > 0)
            .map(|_| {
                let j = rng.next() % i;
                (hash_part(j), String::new())
            })
            .collect();
        idx.list_key(&h, 500, 1_700_000_000 + i as i64, i + 1);
        idx.apply(&RowData {
            hash_part: h.clone(),
            obj_size: 500,
            mtime: 1_700_000_000 + i as i64,
            etag: i + 1,
            info: Some(NarInfoSummary {
                name,
                store_hash: h.clone(),
                url: format!("nar/{h}{h}.nar.xz"),
                references: refs,
                nar_size: 1000 + rng.next() % 10_000_000,
                file_size: Some(300 + rng.next() % 3_000_000),
                comp: Comp::Xz,
                ca: false,
                deriver: true,
            }),
            status: statuses[(rng.next() % statuses.len() as u64) as usize],
            text: TextRef::default(),
        });
    }
    idx
}

/// Put every (key, body) into the cache at `url` with `g`'s credentials, 64 at a time; panics
/// on any failure.
pub fn put_all(g: &crate::common::Garage, url: &str, objects: Vec<(String, Vec<u8>)>) {
    use futures::StreamExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = g.open(url).await;
        let failures = futures::stream::iter(objects)
            .map(|(key, body)| {
                let store = store.clone();
                async move {
                    store
                        .put(&key, body.into(), &narscope::storage::PutOptions::default())
                        .await
                        .is_err()
                }
            })
            .buffer_unordered(64)
            .filter(|f| futures::future::ready(*f))
            .count()
            .await;
        assert_eq!(failures, 0, "uploads failed");
    });
}
