//! Rules about the crate's own code that the compiler cannot hold, as tests
//! that read the sources: the HTTP layer makes no decision ([`layering`]),
//! and the application layer and the store's traits are documented
//! ([`documentation`]). They live outside the layers they check, so that no
//! file of `src/api` holds the words its scan forbids.

mod documentation;
mod layering;

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, into `found`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The crate's root folder.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
