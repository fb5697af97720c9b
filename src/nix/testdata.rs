//! Test data shared by the unit tests of several modules: the throwaway signing key and
//! narinfos that Nix 2.8 wrote and signed with it.

/// A throwaway secret key, published with narscope's tests. Never use it to sign anything real.
pub(crate) const TEST_SECRET: &str = "cache.example.com-1:cCta2MEsRNuYCgWYyeRXLyfoFpKhQJKn8gLMeXWAb7vIpRKKo/3JoxJ24OYa3DxT2JVV38KjK/1ywHWuMe2JEw==";
/// The public half of [`TEST_SECRET`].
pub(crate) const TEST_PUBLIC: &str =
    "cache.example.com-1:yKUSiqP9yaMSduDmGtw8U9iVVd/Coyv9csB1rjHtiRM=";

/// Every substring of `len` characters of `secret`'s base64 that occurs in `text`.
pub(crate) fn leaked_pieces(text: &str, secret: &str, len: usize) -> Vec<String> {
    let b64 = secret.split_once(':').map_or(secret, |(_, d)| d);
    let chars: Vec<char> = b64.chars().collect();
    chars
        .windows(len)
        .map(|w| w.iter().collect::<String>())
        .filter(|w| text.contains(w.as_str()))
        .collect()
}

/// One fingerprint vector: (fingerprint, path, NarHash, NarSize, references, signature).
pub(crate) type Vector = (
    &'static str,
    &'static str,
    &'static str,
    u64,
    &'static [&'static str],
    &'static str,
);

/// Fingerprints and signatures that Nix 2.8 made with the throwaway key [`TEST_SECRET`].
pub(crate) const FINGERPRINT_VECTORS: &[Vector] = &[
    (
        "1;/nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref;sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39;160;/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
        "/nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref",
        "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39",
        160,
        &["vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo"],
        "cache.example.com-1:5SLzsRkKi90vHor0O595UqtjbW7VpXluVVXETfgnelaILr40R1JRW8Dc7VmaeEJmjDICxb8oVCKmNm2sexSBCw==",
    ),
    (
        "1;/nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt;sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;",
        "/nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt",
        "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
        120,
        &[],
        "cache.example.com-1:kfonPOBv0s/TaXi5X5YcZU3TIoqrc4+aDd7q//+mxXXPxphDndqUnCzc3aaJ3v/DW1h3Y0RACyTVFr0TIyTJAQ==",
    ),
    (
        "1;/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo;sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz;120;",
        "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
        "sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz",
        120,
        &[],
        "cache.example.com-1:hLaVJbStfSEdJ53UbQlhyKT15y89/Dyi23MspK2/zQBB8eyemDelay8vUO8DFs0qla62aEyOmK4wcqnyhFivCg==",
    ),
    (
        "1;/nix/store/xglgicngsyrdq9w7r3i4gd4d12mq2x5a-tree;sha256:1z6lc24y87d2fvdvij404yddclby8qbcmybm61w8ckrxb86617mb;888;",
        "/nix/store/xglgicngsyrdq9w7r3i4gd4d12mq2x5a-tree",
        "sha256:1z6lc24y87d2fvdvij404yddclby8qbcmybm61w8ckrxb86617mb",
        888,
        &[],
        "cache.example.com-1:QW+Bd6KcfXzf/KUSLuPPdSQH02lI5pC23o1bVvyQNGcCTX/6+0KWmeMT3Ya0KSv63JgYvaO4yNa59Kgw5ZJaDA==",
    ),
];

/// A narinfo with one reference (to [`FOO`]) and a deriver, signed with [`TEST_SECRET`].
pub(crate) const WITHREF: &str = "StorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref
URL: nar/1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk.nar.xz
Compression: xz
FileHash: sha256:1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk
FileSize: 172
NarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39
NarSize: 160
References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
Deriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv
Sig: cache.example.com-1:5SLzsRkKi90vHor0O595UqtjbW7VpXluVVXETfgnelaILr40R1JRW8Dc7VmaeEJmjDICxb8oVCKmNm2sexSBCw==
";

/// A text-hashed content-addressed path with no references, signed with [`TEST_SECRET`].
pub(crate) const FOO: &str = "StorePath: /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
URL: nar/0kmghbql0czfkik5qj75lgzpdy376y8nwy003pw0z7a788ga40q6.nar.xz
Compression: xz
FileHash: sha256:0kmghbql0czfkik5qj75lgzpdy376y8nwy003pw0z7a788ga40q6
FileSize: 124
NarHash: sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz
NarSize: 120
References: 
Sig: cache.example.com-1:hLaVJbStfSEdJ53UbQlhyKT15y89/Dyi23MspK2/zQBB8eyemDelay8vUO8DFs0qla62aEyOmK4wcqnyhFivCg==
CA: text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw
";

/// A fixed-output (recursive sha256) content-addressed path, signed with [`TEST_SECRET`].
pub(crate) const HELLO: &str = "StorePath: /nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt
URL: nar/17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a.nar.xz
Compression: xz
FileHash: sha256:17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a
FileSize: 128
NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
NarSize: 120
References: 
Sig: cache.example.com-1:kfonPOBv0s/TaXi5X5YcZU3TIoqrc4+aDd7q//+mxXXPxphDndqUnCzc3aaJ3v/DW1h3Y0RACyTVFr0TIyTJAQ==
CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
";

/// Removes the line starting with `prefix`.
pub(crate) fn without_line(text: &str, prefix: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}
