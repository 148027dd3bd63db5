//! The HTTP layer makes no decision: a handler parses, calls the
//! application layer, renders. These tests read `src/api` and fail when a
//! rule-bearing call comes back into it — a command executed, the store or a
//! random-number generator touched, or the projections read other than
//! through the named reads of `app::reads`.

use std::path::Path;

use super::{root, sources};

/// What no file of `src/api` may contain: each a write, a store access,
/// randomness or a projection read that belongs to `src/app`.
const FORBIDDEN: [(&str, &str); 6] = [
    (".execute(", "a command executed from a handler: call an app function"),
    (".execute::<", "a command executed from a handler: call an app function"),
    ("crate::store", "the store used from the HTTP layer"),
    ("rand::", "randomness in the HTTP layer: the app layer owns it"),
    ("use rand", "randomness in the HTTP layer: the app layer owns it"),
    (".projections", "the projections read directly: ask a named read of `app::reads` (or the test ledger's)"),
];

/// The code of a source file, its comment lines left out.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Each finding of `forbidden` in `files`, as `file: what`.
fn findings(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, text) in files {
        for (needle, why) in FORBIDDEN {
            if text.contains(needle) {
                found.push(format!("{name}: `{needle}` — {why}"));
            }
        }
    }
    found
}

fn api_files() -> Vec<(String, String)> {
    let root = root();
    let mut paths = Vec::new();
    sources(&root.join("src/api"), &mut paths);
    paths.iter().map(|p| (p.strip_prefix(root).unwrap_or(p).display().to_string(), code(p))).collect()
}

#[test]
fn the_http_layer_executes_no_command_and_touches_neither_store_nor_randomness() {
    let files = api_files();
    assert!(files.len() > 20, "the HTTP layer's sources were not found");
    assert_eq!(findings(&files), Vec::<String>::new());
}

#[test]
fn the_scan_catches_a_rule_put_back_into_a_handler() {
    let handler = "pub async fn disable(state: State<AppState>) {\n    \
                   state.ledger.execute::<User>(&name, command, &metadata).await?;\n    \
                   let token = rand::random::<u64>();\n    \
                   let credentials = crate::store::Credentials::open();\n    \
                   let user = state.ledger.projections.read().users.get(&name);\n}";
    let found = findings(&[("src/api/new_handler.rs".to_owned(), handler.to_owned())]);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].contains("`.execute::<`"), "{found:#?}");
    assert!(found.iter().any(|f| f.contains("crate::store")), "{found:#?}");
    assert!(found.iter().any(|f| f.contains("rand::")), "{found:#?}");
    assert!(found.iter().any(|f| f.contains("`.projections`")), "{found:#?}");
}
