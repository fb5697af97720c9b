//! File-tree helpers: copy a cache, list its files as object keys, age it for GC.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Copies the tree `from` into `to` (created if missing), files and directories.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
    }
}

/// Every regular file under `dir`, as (key relative to `dir` with `/` separators, path),
/// sorted by key.
pub fn list_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.unwrap_or_else(|e| panic!("{}: {e}", d.display())).path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let key: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((key.join("/"), path));
        }
    }
    out.sort();
    out
}

/// Sets the modification time of every file under `dir` to `age` ago (GC keeps young
/// objects).
pub fn age_files(dir: &Path, age: Duration) {
    let t = SystemTime::now() - age;
    for (_, p) in list_files(dir) {
        let f = std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        f.set_modified(t)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}
