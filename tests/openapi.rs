//! The OpenAPI document (`GET /openapi.json`): it covers every route, every
//! operation answers its errors in the envelope, and schemathesis — a
//! property-based tester that reads the document and sends what it allows
//! and what it does not — finds no server error and no answer outside the
//! document. schemathesis runs from `tests/schemathesis/.venv` (`.ci/run`
//! makes it from `tests/schemathesis/requirements.txt`); without it the test
//! says so loudly and passes, unless `AUTHLEDGER_REQUIRE_SCHEMATHESIS=1`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::common;

use common::Harness;

const METHODS: [&str; 6] = ["get", "put", "post", "delete", "head", "patch"];

/// Every `(method, path)` the document lists.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

async fn document(h: &Harness) -> Value {
    let answer = h.get("/openapi.json", None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
    answer.json()
}

async fn the_document_is_openapi_3_1_and_every_operation_answers_errors_in_the_envelope(h: Harness) -> Harness {
    let document = document(&h).await;
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", document["openapi"]);
    let operations = operations(&document);
    // Every route of the service: a route that disappears (or appears) changes this count.
    assert_eq!(operations.len(), 119, "the operations changed: {operations:?}");
    let mut ids = BTreeSet::new();
    for (method, path) in &operations {
        let responses = &document["paths"][path][method]["responses"];
        for range in ["4XX", "5XX"] {
            let content = &responses[range]["content"];
            if method == "head" {
                assert!(content.is_null(), "{method} {path} {range}: a HEAD answer has no body");
                continue;
            }
            assert_eq!(
                content["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorEnvelope",
                "{method} {path} {range}"
            );
            assert_eq!(content["text/html"]["schema"]["type"], "string", "{method} {path} {range}: the error page");
        }
        // A browser's form post that succeeds is sent back to its page (post/redirect/get).
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        if method == "post" && authledger::api::pages::page_after_post(&concrete, false).is_some() {
            assert!(responses.get("303").is_some(), "{method} {path} redirects a browser's form post: no 303");
        }
        // The legacy KBase login refuses GET (upstream does): its one exception.
        if !path.ends_with("/api/legacy/KBase/Sessions/Login") || method != "get" {
            assert!(
                responses.as_object().expect("responses").keys().any(|k| k.starts_with('2') || k.starts_with('3')),
                "{method} {path} documents no success"
            );
        }
        let id = document["paths"][path][method]["operationId"].as_str().expect("an operation id");
        assert!(ids.insert(id.to_owned()), "operation id {id} twice");
    }
    let schemas = &document["components"]["schemas"];
    let envelope = &schemas["ErrorEnvelope"];
    assert_eq!(envelope["required"], serde_json::json!(["error"]));
    let body = &schemas["ErrorBody"]["properties"];
    for member in ["httpcode", "httpstatus", "appcode", "apperror", "message", "callid", "time"] {
        assert!(body.get(member).is_some(), "ErrorBody lacks {member}");
    }
    // The introspection answer is the handler's own type, with its members.
    let token = &document["paths"]["/api/V2/token"]["get"]["responses"]["200"]["content"]["application/json"];
    assert_eq!(token["schema"]["$ref"], "#/components/schemas/ApiToken");
    let members: BTreeSet<&str> =
        schemas["ApiToken"]["properties"].as_object().expect("ApiToken").keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> =
        ["type", "id", "expires", "created", "name", "user", "custom", "mfa", "cachefor"].into();
    assert_eq!(members, expected);
    // A request body's documented members are the ones the handler accepts.
    let agent = &document["paths"]["/api/V2/token"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(agent["$ref"], "#/components/schemas/AgentTokenRequest");
    let answer = h.post("/api/V2/token", Some("some token"), serde_json::json!({"name": "n", "extra": 1})).await;
    answer.assert_error(400, "30001 Illegal input parameter: Unexpected parameters in request: extra");
    h
}
on_both_stores!(the_document_is_openapi_3_1_and_every_operation_answers_errors_in_the_envelope);

/// Routes are registered only through `utoipa_axum`'s `routes!`, which takes
/// each route from its handler's entry: a plain `.route(…)` would add a route
/// the document does not have.
#[test]
fn no_route_is_registered_outside_the_document() {
    let mut offending = Vec::new();
    let mut files = Vec::new();
    collect_rust_files(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default().replace("OpenApiRouter::new()", "");
            let code = code.replace("OpenApiRouter::<", "");
            for call in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".fallback_service(",
                "Router::new()",
                "Router::default()",
                "Router::<",
            ] {
                if code.contains(call) {
                    offending.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
                }
            }
        }
    }
    assert!(offending.is_empty(), "routes outside the OpenAPI document:\n{}", offending.join("\n"));
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every operation of the document is a route: asked without credentials,
/// none answers the router's own 404 (which has no call id) or 405.
async fn every_documented_operation_is_routed(h: Harness) -> Harness {
    let document = document(&h).await;
    for (method, path) in operations(&document) {
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let answer = h.send(common::no_redirects().request(method.clone(), h.url(&concrete))).await;
        assert_ne!(answer.status, 405, "{method} {path}: {}", answer.text);
        if answer.status == 404 && method != reqwest::Method::HEAD {
            let body = answer.json();
            assert!(body["error"]["callid"].is_string(), "{method} {path} is not routed: {}", answer.text);
        }
    }
    // And back: a documented path answers no method its entry does not list
    // (HEAD comes with GET), so the router has no route the document lacks.
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                continue;
            }
            let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let answer = h.send(common::no_redirects().request(verb, h.url(&concrete))).await;
            assert_eq!(answer.status, 405, "{method} {path} is routed but not documented: {}", answer.text);
        }
    }
    h
}
on_both_stores!(every_documented_operation_is_routed, test_mode);

/// The document says which operations a token opens, and the server holds
/// to it: every operation with a security requirement, asked with no token
/// and no cookie, refuses with 400 10010 (or refuses its input first, an
/// empty body or a missing parameter, as upstream orders it); and an
/// operation the document calls public never answers 10010 unless its own
/// 400 or 403 says it reads a token or a cookie of its own (the legacy
/// endpoints take theirs in a form or their own header; a sign-in in
/// progress is a cookie).
async fn the_documents_security_is_what_the_server_requires(h: Harness) -> Harness {
    let document = document(&h).await;
    let mut wrong = Vec::new();
    for (method, path) in operations(&document) {
        let operation = &document["paths"][&path][&method];
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut request = common::no_redirects().request(verb, h.url(&concrete));
        let body = &operation["requestBody"]["content"];
        if body.get("application/json").is_some() {
            request = request.header("content-type", "application/json").body("{}");
        } else if body.get("application/x-www-form-urlencoded").is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded").body("");
        }
        let answer = h.send(request).await;
        let appcode = serde_json::from_str::<Value>(&answer.text).ok().and_then(|v| v["error"]["appcode"].as_u64());
        let secured = operation.get("security").is_some();
        if secured {
            let refused_for_the_token = answer.status == 400 && appcode == Some(10010);
            let refused_for_the_input = answer.status == 400 && appcode.is_some_and(|c| c / 1000 == 30);
            if !refused_for_the_token && !refused_for_the_input {
                wrong.push(format!("{method} {path} needs a token, yet answered {} {:?}", answer.status, appcode));
            }
        } else if appcode == Some(10010) {
            let says = |status: &str| {
                operation["responses"][status]["description"].as_str().is_some_and(|d| {
                    let d = d.to_lowercase();
                    d.contains("no token") || d.contains("cookie")
                })
            };
            if !says("400") && !says("403") {
                wrong.push(format!("{method} {path} is public in the document, yet wants a token"));
            }
        }
    }
    assert!(wrong.is_empty(), "the document's security is not the server's:\n{}", wrong.join("\n"));
    h
}
on_both_stores!(the_documents_security_is_what_the_server_requires, test_mode);

/// The schemathesis command, or `None` (with a loud message) when it is not installed.
fn schemathesis() -> Option<PathBuf> {
    let st = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis/.venv/bin/st")).to_path_buf();
    if st.exists() {
        return Some(st);
    }
    let required = std::env::var("AUTHLEDGER_REQUIRE_SCHEMATHESIS").as_deref() == Ok("1");
    assert!(
        !required,
        "AUTHLEDGER_REQUIRE_SCHEMATHESIS=1 but {} is missing (python3 -m venv tests/schemathesis/.venv && \
         tests/schemathesis/.venv/bin/pip install -r tests/schemathesis/requirements.txt)",
        st.display()
    );
    eprintln!(
        "\n*** SKIPPED: schemathesis is not installed at {} (see tests/schemathesis/requirements.txt) ***\n",
        st.display()
    );
    None
}

/// Runs schemathesis against the server: `extra` adds its arguments (a
/// token, operations left out). Returns what it printed; panics on failure.
fn run_schemathesis(st: &Path, h: &Harness, label: &str, extra: &[&str]) -> String {
    let report = std::env::temp_dir().join(format!("authledger-schemathesis-{}-{label}", std::process::id()));
    // It runs there, so that its example database stays out of the checkout (and out of the next run).
    std::fs::create_dir_all(&report).expect("a report directory");
    let started = Instant::now();
    let output = std::process::Command::new(st)
        .current_dir(&report)
        .arg("run")
        .arg(h.url("/openapi.json"))
        .args(["--url", &h.url("")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "12", "--seed", "20261130", "--workers", "1", "--no-shrink"])
        .args(["--request-timeout", "20", "--max-redirects", "0", "--warnings", "off"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .args(extra)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("schemathesis ({label}) took {:.1} s:\n{printed}", started.elapsed().as_secs_f64());
    assert!(output.status.success(), "schemathesis ({label}) found problems:\n{printed}");
    let _ = std::fs::remove_dir_all(&report);
    printed
}

/// schemathesis sends what the document allows (and what it does not) to
/// every operation, once with an administrator's token and once with none:
/// no answer is a 5xx, every status is documented, and every body — each 4xx
/// included — matches its schema, so every error is in the envelope.
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document(h: Harness) -> Harness {
    let Some(st) = schemathesis() else {
        return h;
    };
    let (_, admin) = h.administrators().await;
    let authorization = format!("Authorization: {admin}");
    // With the token, everything but what would end the token itself (and so the rest of the run).
    let printed = run_schemathesis(
        &st,
        &h,
        "administrator",
        &[
            "-H",
            &authorization,
            "--exclude-path-regex",
            "^/(admin/revokeall|admin/forcereset|tokens/revokeall|logout|testmode/api/V2/testmodeonly/clear)$",
        ],
    );
    let tested =
        printed.lines().find_map(|l| l.trim().strip_prefix("Tested: ")).and_then(|n| n.trim().parse::<usize>().ok());
    assert!(tested.is_some_and(|n| n >= 100), "{printed}");
    // The other two runs go through the same handlers: on one store, they cost half the time.
    if !h.store.url().starts_with("postgres") {
        run_schemathesis(&st, &h, "anonymous", &["--max-examples", "3"]);
        // As a browser: the pages, their form posts sent back with 303, and the error page.
        let root = h.login(common::ROOT, common::ROOT_PASSWORD).await;
        let authorization = format!("Authorization: {root}");
        run_schemathesis(
            &st,
            &h,
            "browser",
            &[
                "-H",
                "Accept: text/html",
                "-H",
                &authorization,
                "--exclude-path-regex",
                "^/(admin/revokeall|admin/forcereset|tokens/revokeall|logout|testmode/api/V2/testmodeonly/clear)$",
                "--max-examples",
                "3",
            ],
        );
    }
    // The server kept serving (the runs may have revoked the tokens, disabled
    // the administrator or reset root's password: what they send is random).
    assert_eq!(h.get("/healthz", None).await.status, 200);
    assert_eq!(h.get("/", None).await.status, 200);
    h.get("/api/V2/token", Some("no such token")).await.assert_error(401, "10020 Invalid token");
    h
}
on_both_stores!(schemathesis_finds_no_server_error_and_no_answer_outside_the_document, test_mode);
