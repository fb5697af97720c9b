//! Nix's trust rules for narinfos: which signatures verify under which trusted keys, and the
//! resulting [`Verdict`] for a path (`ValidPathInfo::checkSignatures` and
//! `ValidPathInfo::isContentAddressed` in Nix 2.8's `src/libstore/store-api.cc`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::content_address::compute_ca_path_in;
use super::fingerprint::fingerprint_with;
use super::hash::HashEncoding;
use super::keys::{PublicKey, TrustedKeys};
use super::narinfo::NarInfo;
use super::signature::Signature;
use super::store_path::StorePath;

/// The result of checking one `Sig` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum SigOutcome {
    /// Verifies over the standard fingerprint under the trusted key of that name.
    Valid,
    /// Trusted key name; verifies only over a legacy fingerprint (which one is said).
    /// Nix does not accept it.
    ValidLegacyOnly(String),
    /// Trusted key name, but does not verify.
    Invalid,
    /// No trusted key has this name.
    UnknownKey,
    /// Not `<name>:<base64 of 64 bytes>`; the cause is said.
    Malformed(String),
}

/// One signature and what checking it gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigCheck {
    /// The `Sig` value as written.
    pub raw: String,
    /// Key name, if one could be read (text before the first ':').
    pub key_name: Option<String>,
    /// What checking this signature gave.
    pub outcome: SigOutcome,
}

/// Overall trust verdict for a path, as Nix with `require-sigs = true` would see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// At least one signature from a trusted key verifies.
    Trusted,
    /// No trusted signature, but the store path recomputes from its CA field.
    ContentAddressed,
    /// Signatures present, none usable (unknown keys, legacy-only, malformed).
    Untrusted,
    /// A signature under a trusted key's name fails to verify in any form.
    Invalid,
    /// No signatures at all.
    Unsigned,
}

impl Verdict {
    /// `trusted`, `content-addressed`, `untrusted`, `invalid` or `unsigned`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Trusted => "trusted",
            Verdict::ContentAddressed => "content-addressed",
            Verdict::Untrusted => "untrusted",
            Verdict::Invalid => "invalid",
            Verdict::Unsigned => "unsigned",
        }
    }

    /// True for verdicts under which Nix would substitute the path.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Trusted | Verdict::ContentAddressed)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything [`check_path`] found out about one narinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathVerdict {
    /// The overall verdict for the path.
    pub verdict: Verdict,
    /// Each distinct `Sig` value, in file order.
    pub sigs: Vec<SigCheck>,
    /// The standard fingerprint that was checked.
    pub fingerprint: String,
    /// `Some(true/false)` if the narinfo has a CA field: whether the path recomputes.
    pub ca_path_ok: Option<bool>,
    /// Explanations in words.
    pub reasons: Vec<String>,
}

/// Longest raw signature text quoted in a reason.
const MAX_QUOTE: usize = 100;

fn quote(s: &str) -> String {
    if s.len() <= MAX_QUOTE {
        return s.to_owned();
    }
    let mut end = MAX_QUOTE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

/// Applies Nix's trust rules to a narinfo (see [`Verdict`]). Keys are looked up by
/// the signature's name, as Nix does; a legacy fingerprint (references in narinfo
/// order) is tried only for trusted-name signatures that fail the standard one.
pub fn check_path(info: &NarInfo, keys: &TrustedKeys) -> PathVerdict {
    check_path_with(info, keys, info.fingerprint(), &|_| false)
}

/// Check many paths at once, with the same results as [`check_path`] on each.
///
/// Every well-formed signature under a trusted key's name is first verified in one Ed25519
/// batch (about twice as fast per signature); only when the batch fails is each signature
/// verified on its own with `verify_strict`, which gives the exact per-signature outcomes.
/// A batch accepts exactly the signatures `verify_strict` accepts, except ones deliberately
/// built by the key's owner with a small-order component, which libsodium (and so Nix) would
/// reject; weak (small-order) trusted keys are never batched.
pub fn check_paths(infos: &[&NarInfo], keys: &TrustedKeys) -> Vec<PathVerdict> {
    let fps: Vec<String> = infos.iter().map(|i| i.fingerprint()).collect();
    // (path index, sig index) of each batch candidate, and the batch's inputs.
    let mut cand = Vec::new();
    let mut msgs: Vec<&[u8]> = Vec::new();
    let mut sigs = Vec::new();
    let mut vks = Vec::new();
    let mut batchable = true;
    for (i, info) in infos.iter().enumerate() {
        for (j, raw) in info.sigs.iter().enumerate() {
            if let Ok(sig) = Signature::parse(raw)
                && let Some(pk) = keys.get(&sig.key_name)
            {
                if pk.verifying_key().is_weak() {
                    batchable = false;
                }
                cand.push((i, j));
                msgs.push(fps[i].as_bytes());
                sigs.push(ed25519_dalek::Signature::from_bytes(&sig.bytes));
                vks.push(*pk.verifying_key());
            }
        }
    }
    let all_valid =
        batchable && !cand.is_empty() && ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok();
    let valid: std::collections::HashSet<(usize, usize)> = if all_valid {
        cand.into_iter().collect()
    } else {
        std::collections::HashSet::new()
    };
    infos
        .iter()
        .zip(fps)
        .enumerate()
        .map(|(i, (info, fp))| check_path_with(info, keys, fp, &|j| valid.contains(&(i, j))))
        .collect()
}

/// [`check_path`] with the fingerprint computed and some signatures (by index in
/// `info.sigs`) already known to verify under their trusted key.
fn check_path_with(
    info: &NarInfo,
    keys: &TrustedKeys,
    fp: String,
    known_valid: &dyn Fn(usize) -> bool,
) -> PathVerdict {
    let mut reasons = Vec::new();
    let mut sigs = Vec::with_capacity(info.sigs.len());
    // Trusted-name signatures that failed the standard fingerprint: index into `sigs`.
    let mut failed: Vec<(usize, &PublicKey, Signature)> = Vec::new();

    for (j, raw) in info.sigs.iter().enumerate() {
        match Signature::parse(raw) {
            Ok(sig) => {
                let outcome = match keys.get(&sig.key_name) {
                    None => SigOutcome::UnknownKey,
                    Some(pk) if known_valid(j) || pk.verify(&fp, &sig) => SigOutcome::Valid,
                    Some(pk) => {
                        failed.push((sigs.len(), pk, sig.clone()));
                        SigOutcome::Invalid
                    }
                };
                sigs.push(SigCheck {
                    raw: raw.clone(),
                    key_name: Some(sig.key_name),
                    outcome,
                });
            }
            Err(e) => {
                let key_name = raw
                    .split_once(':')
                    .map(|(n, _)| n)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned);
                sigs.push(SigCheck {
                    raw: raw.clone(),
                    key_name,
                    outcome: SigOutcome::Malformed(e.to_string()),
                });
            }
        }
    }

    let any_valid = sigs.iter().any(|s| s.outcome == SigOutcome::Valid);

    // Legacy form: references in narinfo order, only worth trying when that differs.
    if !any_valid && !failed.is_empty() {
        let mut sorted: Vec<&StorePath> = info.references.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let differs = sorted.len() != info.references.len()
            || sorted.iter().zip(&info.references).any(|(a, b)| *a != b);
        if differs {
            let legacy = fingerprint_with(
                info.store_dir(),
                &info.store_path,
                &info.nar_hash,
                info.nar_size,
                info.references.iter(),
            );
            for (idx, pk, sig) in &failed {
                if pk.verify(&legacy, sig)
                    && let Some(check) = sigs.get_mut(*idx)
                {
                    check.outcome =
                        SigOutcome::ValidLegacyOnly("valid only over unsorted references".into());
                }
            }
        }
    }

    for s in &sigs {
        let name = s.key_name.as_deref().unwrap_or("?");
        reasons.push(match &s.outcome {
            SigOutcome::Valid => format!("signed by trusted key {name}"),
            SigOutcome::ValidLegacyOnly(how) => format!(
                "signature by trusted key {name} is {how} (legacy fingerprint); Nix rejects it"
            ),
            SigOutcome::Invalid => format!("signature by trusted key {name} does not verify"),
            SigOutcome::UnknownKey => format!("signed by unknown key {name}"),
            SigOutcome::Malformed(cause) => {
                format!("malformed signature '{}': {cause}", quote(&s.raw))
            }
        });
    }

    let ca_path_ok = info.ca.as_ref().map(|ca| {
        match compute_ca_path_in(
            info.store_dir(),
            info.store_path.name(),
            ca,
            &info.references,
            &info.store_path,
        ) {
            Ok(p) if p == info.store_path => true,
            Ok(p) => {
                reasons.push(format!(
                    "path claims to be content-addressed but isn't: CA {ca} gives {}",
                    p.in_dir(info.store_dir())
                ));
                false
            }
            Err(e) => {
                reasons.push(format!("cannot recompute content-addressed path: {e}"));
                false
            }
        }
    });

    let trusted_name_invalid = sigs.iter().any(|s| match &s.outcome {
        SigOutcome::Invalid => true,
        SigOutcome::Malformed(_) => s.key_name.as_deref().is_some_and(|n| keys.get(n).is_some()),
        _ => false,
    });

    let verdict = if any_valid {
        Verdict::Trusted
    } else if ca_path_ok == Some(true) {
        reasons.push("content-addressed: store path recomputes from CA".to_owned());
        Verdict::ContentAddressed
    } else if trusted_name_invalid {
        Verdict::Invalid
    } else if !sigs.is_empty() {
        Verdict::Untrusted
    } else {
        reasons.push("no signatures".to_owned());
        Verdict::Unsigned
    };

    let enc = info.nar_hash_encoding();
    if enc != HashEncoding::Nix32 {
        reasons.push(format!(
            "NarHash is written in {enc} in the narinfo; the fingerprint uses its nix32 form"
        ));
    }

    PathVerdict {
        verdict,
        sigs,
        fingerprint: fp,
        ca_path_ok,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::hash::Hash;
    use crate::nix::keys::SecretKey;
    use crate::nix::testdata::{FINGERPRINT_VECTORS, TEST_PUBLIC, TEST_SECRET};

    fn sp(s: &str) -> StorePath {
        StorePath::parse_any(s).unwrap()
    }

    #[test]
    fn verdict_strings() {
        assert_eq!(Verdict::ContentAddressed.as_str(), "content-addressed");
        assert_eq!(
            serde_json::to_string(&Verdict::ContentAddressed).unwrap(),
            "\"content-addressed\""
        );
        for v in [
            Verdict::Trusted,
            Verdict::ContentAddressed,
            Verdict::Untrusted,
            Verdict::Invalid,
            Verdict::Unsigned,
        ] {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
            let back: Verdict = serde_json::from_str(&format!("\"{}\"", v.as_str())).unwrap();
            assert_eq!(back, v);
        }
    }

    mod verdicts {
        use super::*;
        use crate::nix::testdata::{FOO, HELLO, WITHREF, without_line};

        fn trusted() -> TrustedKeys {
            TrustedKeys::parse_list(TEST_PUBLIC).unwrap()
        }

        #[test]
        fn doc_narinfos_are_trusted() {
            for text in [WITHREF, FOO, HELLO] {
                let n = NarInfo::parse(text, "x").unwrap();
                let v = check_path(&n, &trusted());
                assert_eq!(v.verdict, Verdict::Trusted, "{:?}", v.reasons);
                assert_eq!(v.sigs.len(), 1);
                assert_eq!(v.sigs[0].outcome, SigOutcome::Valid);
                assert_eq!(v.sigs[0].key_name.as_deref(), Some("cache.example.com-1"));
                assert_eq!(v.fingerprint, n.fingerprint());
                assert_eq!(v.reasons[0], "signed by trusted key cache.example.com-1");
            }
            let v = check_path(&NarInfo::parse(WITHREF, "x").unwrap(), &trusted());
            assert_eq!(v.fingerprint, FINGERPRINT_VECTORS[0].0);
            assert_eq!(v.ca_path_ok, None);
            let v = check_path(&NarInfo::parse(HELLO, "x").unwrap(), &trusted());
            assert_eq!(v.ca_path_ok, Some(true));
        }

        #[test]
        fn ca_paths_without_keys() {
            for text in [FOO, HELLO] {
                let n = NarInfo::parse(text, "x").unwrap();
                let v = check_path(&n, &TrustedKeys::new());
                assert_eq!(v.verdict, Verdict::ContentAddressed, "{:?}", v.reasons);
                assert_eq!(v.ca_path_ok, Some(true));
                assert_eq!(v.sigs[0].outcome, SigOutcome::UnknownKey);
                assert_eq!(
                    v.reasons,
                    vec![
                        "signed by unknown key cache.example.com-1".to_owned(),
                        "content-addressed: store path recomputes from CA".to_owned()
                    ]
                );
            }
            // A CA that does not match the path: no longer content-addressed.
            let bad = HELLO.replace(
                "CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
                "CA: fixed:r:sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz",
            );
            let n = NarInfo::parse(&without_line(&bad, "Sig:"), "x").unwrap();
            let v = check_path(&n, &TrustedKeys::new());
            assert_eq!(v.verdict, Verdict::Unsigned);
            assert_eq!(v.ca_path_ok, Some(false));
            assert!(v.reasons[0].starts_with(
                "path claims to be content-addressed but isn't: CA fixed:r:sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz gives /nix/store/"
            ));
        }

        #[test]
        fn unsigned() {
            let n = NarInfo::parse(&without_line(WITHREF, "Sig:"), "x").unwrap();
            let v = check_path(&n, &trusted());
            assert_eq!(v.verdict, Verdict::Unsigned);
            assert!(v.sigs.is_empty());
            assert_eq!(v.reasons, vec!["no signatures".to_owned()]);
        }

        #[test]
        fn unknown_key_is_untrusted() {
            let n = NarInfo::parse(WITHREF, "x").unwrap();
            let keys = TrustedKeys::parse_list(crate::nix::keys::CACHE_NIXOS_ORG_KEY).unwrap();
            let v = check_path(&n, &keys);
            assert_eq!(v.verdict, Verdict::Untrusted);
            assert_eq!(
                v.reasons,
                vec!["signed by unknown key cache.example.com-1".to_owned()]
            );
            // Same bytes, but under another key's name: Nix matches by name, so unknown.
            let renamed = WITHREF.replace("Sig: cache.example.com-1:", "Sig: hydra.other.net-1:");
            let v = check_path(&NarInfo::parse(&renamed, "x").unwrap(), &trusted());
            assert_eq!(v.verdict, Verdict::Untrusted);
            assert_eq!(v.sigs[0].outcome, SigOutcome::UnknownKey);
            assert_eq!(
                v.reasons,
                vec!["signed by unknown key hydra.other.net-1".to_owned()]
            );
        }

        #[test]
        fn tampered_sig_under_trusted_name_is_invalid() {
            let tampered = WITHREF.replace(
                "Sig: cache.example.com-1:5SLz",
                "Sig: cache.example.com-1:5SLy",
            );
            let n = NarInfo::parse(&tampered, "x").unwrap();
            let v = check_path(&n, &trusted());
            assert_eq!(v.verdict, Verdict::Invalid);
            assert_eq!(v.sigs[0].outcome, SigOutcome::Invalid);
            assert_eq!(
                v.reasons,
                vec!["signature by trusted key cache.example.com-1 does not verify".to_owned()]
            );
            // A changed NarSize also breaks the signature.
            let n = NarInfo::parse(&WITHREF.replace("NarSize: 160", "NarSize: 161"), "x").unwrap();
            assert_eq!(check_path(&n, &trusted()).verdict, Verdict::Invalid);
            // One good signature is enough even next to a bad one.
            let both = format!(
                "{WITHREF}{}",
                tampered.lines().nth(9).unwrap().to_owned() + "\n"
            );
            let n = NarInfo::parse(&both, "x").unwrap();
            assert_eq!(n.sigs.len(), 2);
            assert_eq!(check_path(&n, &trusted()).verdict, Verdict::Trusted);
        }

        #[test]
        fn malformed_sigs() {
            let base = without_line(WITHREF, "Sig:");
            let n = NarInfo::parse(&format!("{base}Sig: garbage\n"), "x").unwrap();
            let v = check_path(&n, &trusted());
            assert_eq!(v.verdict, Verdict::Untrusted);
            assert_eq!(v.sigs[0].key_name, None);
            assert!(matches!(v.sigs[0].outcome, SigOutcome::Malformed(_)));
            assert_eq!(
                v.reasons,
                vec!["malformed signature 'garbage': signature 'garbage' has no ':' between key name and base64 data".to_owned()]
            );
            let n = NarInfo::parse(&format!("{base}Sig: cache.example.com-1:AAAA\n"), "x").unwrap();
            let v = check_path(&n, &trusted());
            assert_eq!(v.verdict, Verdict::Invalid);
            assert_eq!(v.sigs[0].key_name.as_deref(), Some("cache.example.com-1"));
        }

        #[test]
        fn legacy_unsorted_references() {
            let sk = SecretKey::parse(TEST_SECRET).unwrap();
            let path = sp("/nix/store/xi429w4ddvb1r77978hm7jfb2jsn559r-gcc-3.4.6");
            let refs = [
                sp("yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n"),
                sp("0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0"),
            ];
            let nar_hash = Hash::sha256_of(b"gcc");
            let unsorted_fp = format!(
                "1;{path};{};1234;/nix/store/{},/nix/store/{}",
                nar_hash.to_nix32(),
                refs[0].base_name(),
                refs[1].base_name()
            );
            let sig = sk.sign(&unsorted_fp);
            let text = format!(
                "StorePath: {path}\nURL: nar/x.nar\nCompression: none\nNarHash: {}\nNarSize: 1234\nReferences: {} {}\nSig: {sig}\n",
                nar_hash.to_nix32(),
                refs[0].base_name(),
                refs[1].base_name()
            );
            let n = NarInfo::parse(&text, "x").unwrap();
            assert!(
                n.quirks()
                    .contains(&crate::nix::narinfo::Quirk::ReferencesOutOfOrder)
            );
            let v = check_path(&n, &trusted());
            assert_eq!(v.verdict, Verdict::Untrusted);
            assert_eq!(
                v.sigs[0].outcome,
                SigOutcome::ValidLegacyOnly("valid only over unsorted references".to_owned())
            );
            assert_eq!(
                v.reasons,
                vec!["signature by trusted key cache.example.com-1 is valid only over unsorted references (legacy fingerprint); Nix rejects it".to_owned()]
            );
            assert_ne!(v.fingerprint, unsorted_fp);
            // Re-signed over the standard (sorted) fingerprint it is trusted.
            let mut fixed = n.clone();
            assert!(fixed.sign(&sk));
            assert_eq!(check_path(&fixed, &trusted()).verdict, Verdict::Trusted);
        }

        #[test]
        fn hex_nar_hash_is_noted() {
            let hex = WITHREF.replace(
                "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39",
                &Hash::parse("sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39")
                    .unwrap()
                    .to_hex(),
            );
            let v = check_path(&NarInfo::parse(&hex, "x").unwrap(), &trusted());
            assert_eq!(v.verdict, Verdict::Trusted);
            assert_eq!(
                v.reasons,
                vec![
                    "signed by trusted key cache.example.com-1".to_owned(),
                    "NarHash is written in base16 in the narinfo; the fingerprint uses its nix32 form".to_owned()
                ]
            );
        }

        #[test]
        fn batched_checks_match_single_checks() {
            let tampered = WITHREF.replace(
                "Sig: cache.example.com-1:5SLz",
                "Sig: cache.example.com-1:5SLy",
            );
            let unsigned = without_line(WITHREF, "Sig:");
            let unknown = WITHREF.replace("Sig: cache.example.com-1:", "Sig: other-1:");
            let good: Vec<NarInfo> = [WITHREF, FOO, HELLO]
                .iter()
                .map(|t| NarInfo::parse(t, "x").unwrap())
                .collect();
            let mut mixed = good.clone();
            for t in [tampered.as_str(), unsigned.as_str(), unknown.as_str()] {
                mixed.push(NarInfo::parse(t, "x").unwrap());
            }
            // The batch passes (all good) and fails (one tampered): same verdicts either way.
            for set in [&good, &mixed] {
                let refs: Vec<&NarInfo> = set.iter().collect();
                let batched = check_paths(&refs, &trusted());
                assert_eq!(batched.len(), set.len());
                for (n, b) in set.iter().zip(&batched) {
                    let single = check_path(n, &trusted());
                    assert_eq!(b.verdict, single.verdict);
                    assert_eq!(b.sigs, single.sigs);
                    assert_eq!(b.reasons, single.reasons);
                    assert_eq!(b.fingerprint, single.fingerprint);
                }
            }
            let refs: Vec<&NarInfo> = mixed.iter().collect();
            let verdicts: Vec<Verdict> = check_paths(&refs, &trusted())
                .into_iter()
                .map(|v| v.verdict)
                .collect();
            assert_eq!(
                verdicts,
                [
                    Verdict::Trusted,
                    Verdict::Trusted,
                    Verdict::Trusted,
                    Verdict::Invalid,
                    Verdict::Unsigned,
                    Verdict::Untrusted
                ]
            );
            assert!(check_paths(&[], &trusted()).is_empty());
        }

        #[test]
        fn serializes() {
            let v = check_path(&NarInfo::parse(WITHREF, "x").unwrap(), &trusted());
            let j = serde_json::to_value(&v).unwrap();
            assert_eq!(j["verdict"], "trusted");
            assert_eq!(j["sigs"][0]["outcome"]["kind"], "valid");
        }
    }
}
