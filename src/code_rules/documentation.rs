//! Every public function of the application layer, and every method of the
//! store's backend traits, says what it does in a `///` line.

use std::path::Path;

use super::{root, sources};

/// The lines of `file` declaring a function matched by `declares` with no `///` above it (attributes skipped).
fn undocumented(file: &Path, declares: impl Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if !declares(line) {
            continue;
        }
        let above = lines[..index].iter().rev().find(|l| !l.trim_start().starts_with("#["));
        if !above.is_some_and(|l| l.trim_start().starts_with("///")) {
            missing.push(format!("{}:{}: {}", file.display(), index + 1, line.trim()));
        }
    }
    missing
}

#[test]
fn every_public_function_of_the_application_layer_and_every_store_trait_method_is_documented() {
    let root = root();
    let mut files = Vec::new();
    sources(&root.join("src/app"), &mut files);
    assert!(files.len() > 10, "the application layer's sources were not found");
    let public_fn = |l: &str| {
        let l = l.trim_start();
        ["pub fn ", "pub async fn ", "pub(crate) fn ", "pub(crate) async fn "].iter().any(|p| l.starts_with(p))
    };
    let mut missing: Vec<String> = files.iter().flat_map(|f| undocumented(f, public_fn)).collect();
    // The store's backend traits: their methods are the only unqualified `async fn`s at one indent.
    missing.extend(undocumented(&root.join("src/store/mod.rs"), |l| l.starts_with("    async fn ")));
    assert_eq!(missing, Vec::<String>::new(), "document these");
}
