//! The crate's own source files, for the tests that read them (the layering
//! scan, the documentation check).

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, into `found`.
pub fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}
