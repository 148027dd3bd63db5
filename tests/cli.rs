//! The `authledger` binary end to end: `set-root-password` (stdin, weak
//! passwords, re-enabling root), one-line start-up errors, `serve` with zero
//! setup, the README quickstart, and no secret in the logs or the store.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_authledger");
const ROOT_PASSWORD: &str = "an excellent root passphrase 31!";
const USER_PASSWORD: &str = "correct horse battery staple 77";

fn set_root_password(dir: &Path, store: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["set-root-password", "--store", store])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write");
    child.wait_with_output().expect("it finishes")
}

/// A running `authledger serve`; killed on drop.
struct Serving {
    child: Child,
    base: String,
}

impl Serving {
    /// Stops the server as an operator would (SIGTERM), waiting for its exit.
    fn terminate(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, args: &[&str], log: &Path) -> Serving {
    serve_with(dir, args, &[], log)
}

fn serve_with(dir: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Serving {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AUTHLEDGER_TEST_MODE")
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let base = crate::common::announced_base(&mut child, log);
    Serving { child, base }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).header("Accept", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    if let Some(body) = body {
        request = request.header("Content-Type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn set_root_password_reads_stdin_refuses_weak_passwords_and_re_enables_root() {
    let dir = tempfile::tempdir().expect("dir");
    let store = "sqlite://./data/events.db";
    let weak = set_root_password(dir.path(), store, "password");
    assert_eq!(weak.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("30030 Illegal password: Password is not strong enough."), "{stderr}");

    let created = set_root_password(dir.path(), store, ROOT_PASSWORD);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stderr).contains("created the root account"));
    let again = set_root_password(dir.path(), store, "a different root passphrase 55");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("set the root account's password and enabled it"));
    assert!(dir.path().join("data/events.db").exists());
}

#[test]
fn an_unreachable_store_is_a_one_line_error() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [
        vec!["serve", "--store", "postgres://nobody@127.0.0.1:1/none", "--secrets-key-file", "missing.key"],
        vec!["serve", "--store", "mysql://x"],
        vec!["serve", "--store", "sqlite:///proc/forbidden/events.db"],
    ] {
        let output = Command::new(BIN).args(&args).current_dir(dir.path()).output().expect("runs");
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("authledger:")).collect();
        assert_eq!(lines.len(), 1, "one error line for {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output =
        Command::new(BIN).args(["serve", "--config", "missing.toml"]).current_dir(dir.path()).output().expect("runs");
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read the configuration file missing.toml"));
}

fn authledger(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("AUTHLEDGER_SECRETS_KEY_FILE")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("it finishes");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The key that seals stored secrets from the command line: made beside the
/// default store at first start, required with PostgreSQL, rotated with
/// `secrets rotate-key`, after which only the new file opens the store.
#[test]
fn the_secrets_key_is_made_required_and_rotated_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let store = "sqlite://./data/events.db";
    let root = |env: &[(&str, &str)]| {
        authledger(dir.path(), &["set-root-password", "--store", store], env, &format!("{ROOT_PASSWORD}\n"))
    };
    assert_eq!(root(&[]).0, Some(0));
    let old = std::fs::read_to_string(dir.path().join("data/events.secrets.key")).expect("the default key file");

    let (code, stderr) =
        authledger(dir.path(), &["secrets", "rotate-key", "--new-key-file", "new.key", "--store", store], &[], "");
    assert_eq!(code, Some(0), "{stderr}");
    // root's password hash and the device-mark key
    assert!(stderr.contains("sealed 2 secrets under key"), "{stderr}");
    let new = std::fs::read_to_string(dir.path().join("new.key")).expect("the new key file");
    let old_key = old.lines().find(|l| !l.starts_with('#')).expect("a key");
    assert!(new.lines().filter(|l| !l.starts_with('#')).nth(1) == Some(old_key), "the new file keeps the old key");

    // The old file no longer opens the store; the new one does (flag or environment).
    let (code, stderr) = root(&[]);
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("authledger:")).collect();
    assert!(lines.len() == 1 && lines[0].contains("secrets_key_file"), "{stderr}");
    assert_eq!(root(&[("AUTHLEDGER_SECRETS_KEY_FILE", "new.key")]).0, Some(0));

    // A key file is never overwritten.
    let (code, stderr) = authledger(dir.path(), &["secrets", "new-key", "--file", "new.key"], &[], "");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot create the secrets key file new.key"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("new.key")).expect("kept"), new);

    // PostgreSQL has no default key: one line naming the setting, before connecting.
    let (code, stderr) = authledger(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--store", "postgres://nobody@127.0.0.1:1/none"],
        &[],
        "",
    );
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("authledger:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("secrets_key_file (or AUTHLEDGER_SECRETS_KEY_FILE) is required with PostgreSQL"),
        "{stderr}"
    );
}

/// The README's quickstart, from zero to an introspected token, with the
/// default store created in the working directory — and afterwards no
/// password or token anywhere in the log, the store or the server's trace log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_works_and_leaks_no_secret() {
    let dir = tempfile::tempdir().expect("dir");
    let created = set_root_password(dir.path(), "sqlite://./authledger-data/events.db", ROOT_PASSWORD);
    assert!(created.status.success());
    let log = dir.path().join("server.log");
    let server = serve(dir.path(), &[], &log);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let mut secrets: Vec<String> = vec![ROOT_PASSWORD.into(), USER_PASSWORD.into()];

    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        url("/localaccount/login"),
        None,
        Some(json!({"user": "***ROOT***", "pwd": ROOT_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let root = body["token"].as_str().expect("root token").to_owned();
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        url("/admin/localaccount/create"),
        Some(&root),
        Some(json!({"user": "alice", "display": "Alice Admin", "email": "alice@example.org"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let temporary = body["pwd"].as_str().expect("temporary").to_owned();
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        url("/admin/user/alice/roles"),
        Some(&root),
        Some(json!({"roles": ["CreateAdmin"]})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        url("/localaccount/reset"),
        None,
        Some(json!({"user": "alice", "pwdold": temporary, "pwdnew": USER_PASSWORD})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        url("/localaccount/login"),
        None,
        Some(json!({"user": "alice", "pwd": USER_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let alice = body["token"].as_str().expect("token").to_owned();
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        url("/admin/user/alice/roles"),
        Some(&alice),
        Some(json!({"roles": ["CreateAdmin", "Admin"]})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) =
        call(&http, reqwest::Method::POST, url("/admin/config"), Some(&alice), Some(json!({"allowlogin": true}))).await;
    assert_eq!(status, 204);
    let (status, body) =
        call(&http, reqwest::Method::POST, url("/api/V2/token"), Some(&alice), Some(json!({"name": "my script"})))
            .await;
    assert_eq!(status, 200, "{body}");
    let agent = body["token"].as_str().expect("agent").to_owned();
    let (status, body) = call(&http, reqwest::Method::GET, url("/api/V2/token"), Some(&agent), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"], "alice");
    assert_eq!(body["type"], "Agent");
    secrets.extend([root, alice, agent, temporary]);
    server.terminate();

    let mut haystack = std::fs::read_to_string(&log).expect("the log");
    assert!(haystack.contains("TRACE") || haystack.contains("DEBUG"), "the server logged at trace level");
    // stderr is a pipe here, not a terminal: no colour codes in the log.
    assert!(!haystack.contains('\x1b'), "ANSI escapes in a log that is not a terminal");
    assert!(!haystack.contains("no root account"), "root exists: no hint");
    // Normal operation logs no failure: the shutdown checkpoint is written (and pruned) on SQLite too.
    assert!(haystack.contains("wrote a checkpoint of the projections"), "no shutdown checkpoint");
    for line in haystack.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")) {
        assert!(!line.contains("checkpoint"), "a checkpoint failed: {line}");
    }
    for name in ["authledger-data/events.db", "authledger-data/events.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            haystack.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(haystack.contains("TokenIssued"), "the store was scanned");
    for secret in &secrets {
        assert!(
            !haystack.contains(secret.as_str()),
            "a secret ({} chars) appears in the log or the store",
            secret.len()
        );
    }
}

/// A newcomer's first start on a new log says how to create the root
/// account, with the store it was started with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_log_says_how_to_create_the_root_account() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("server.log");
    let store = "sqlite://./elsewhere/events.db";
    let server = serve(dir.path(), &["--store", store], &log);
    let hint = format!("authledger set-root-password --store {store}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut said = String::new();
    while std::time::Instant::now() < deadline && !said.contains(&hint) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        said = std::fs::read_to_string(&log).unwrap_or_default();
    }
    assert!(said.contains("This log has no root account yet"), "{said}");
    assert!(said.contains(&hint), "{said}");
    drop(server);
    let created = set_root_password(dir.path(), store, ROOT_PASSWORD);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
}

/// Test mode is off unless the flag, the environment or the file turns it on;
/// its log is its own file, and its tokens stay out of logs and files too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_is_off_unless_asked_for() {
    let dir = tempfile::tempdir().expect("dir");
    let http = reqwest::Client::new();
    let create = |base: &str| {
        let url = format!("{base}/testmode/api/V2/testmodeonly/user");
        call(&http, reqwest::Method::POST, url, None, Some(json!({"user": "tess", "display": "Tess"})))
    };
    let off = serve(dir.path(), &[], &dir.path().join("off.log"));
    let (status, body) = create(&off.base).await;
    assert_eq!((status, body["error"]["appcode"].clone()), (400, json!(70000)));
    drop(off);
    assert!(!dir.path().join("authledger-data/events.testmode.db").exists());

    let flagged = serve(dir.path(), &["--test-mode"], &dir.path().join("flag.log"));
    assert_eq!(create(&flagged.base).await.0, 200);
    drop(flagged);
    assert!(dir.path().join("authledger-data/events.testmode.db").exists());

    let disabled = serve(dir.path(), &["--test-mode=false"], &dir.path().join("false.log"));
    assert_eq!(create(&disabled.base).await.1["error"]["appcode"], json!(70000));
    drop(disabled);

    let log = dir.path().join("env.log");
    let by_env = serve_with(dir.path(), &[], &[("AUTHLEDGER_TEST_MODE", "true")], &log);
    let (status, body) = create(&by_env.base).await;
    assert_eq!((status, body["error"]["appcode"].clone()), (400, json!(40000)), "tess outlived the restarts");
    let url = format!("{}/testmode/api/V2/testmodeonly/token", by_env.base);
    let (status, token) =
        call(&http, reqwest::Method::POST, url, None, Some(json!({"user": "tess", "type": "Login"}))).await;
    assert_eq!(status, 200, "{token}");
    let token = token["token"].as_str().expect("a token").to_owned();
    let url = format!("{}/testmode/api/V2/me", by_env.base);
    assert_eq!(call(&http, reqwest::Method::GET, url, Some(&token), None).await.1["user"], "tess");
    drop(by_env);
    let logged = std::fs::read_to_string(&log).expect("the server's log");
    assert!(!logged.is_empty() && !logged.contains(&token), "the test token is not logged");
    let file = std::fs::read(dir.path().join("authledger-data/events.testmode.db")).expect("the test-mode log file");
    assert!(!String::from_utf8_lossy(&file).contains(&token), "the test token is not stored");

    let config = dir.path().join("authledger.toml");
    std::fs::write(&config, "test_mode_enabled = true\n").expect("write the config");
    let by_file = serve(dir.path(), &["--config", config.to_str().expect("a UTF-8 path")], &dir.path().join("f.log"));
    let url = format!("{}/testmode/api/V2/testmodeonly/user/tess", by_file.base);
    assert_eq!(call(&http, reqwest::Method::GET, url, None, None).await.0, 200);
}

/// The SSH side's secrets — provisioning and static token values, invitation
/// tokens, TOTP secrets and the authorities' private keys — never reach the
/// trace log, and never an event (the TOTP secrets and private keys live only
/// in the credentials store, referenced by id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssh_flows_leak_no_secret() {
    let dir = tempfile::tempdir().expect("dir");
    let static_value = "5e1f0c3a9b7d4e2f8a6c1b0d9e8f7a6b";
    std::fs::write(dir.path().join("authledger.toml"), format!("static_tokens = [\"node:{static_value}\"]\n"))
        .expect("config");
    assert!(set_root_password(dir.path(), "sqlite://./authledger-data/events.db", ROOT_PASSWORD).status.success());
    let log = dir.path().join("server.log");
    let server = serve(dir.path(), &["--config", "authledger.toml"], &log);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let post = |path: &str, token: Option<&str>, body: Value| {
        let (url, token) = (url(path), token.map(str::to_owned));
        let http = http.clone();
        async move { call(&http, reqwest::Method::POST, url, token.as_deref(), Some(body)).await }
    };
    let (_, body) = post("/localaccount/login", None, json!({"user": "***ROOT***", "pwd": ROOT_PASSWORD})).await;
    let root = body["token"].as_str().expect("root token").to_owned();
    let (_, body) = post(
        "/admin/localaccount/create",
        Some(&root),
        json!({"user": "ada", "display": "Ada", "email": "a@example.org"}),
    )
    .await;
    let temporary = body["pwd"].as_str().expect("temporary").to_owned();
    post("/admin/user/ada/roles", Some(&root), json!({"roles": ["CreateAdmin"]})).await;
    post("/localaccount/reset", None, json!({"user": "ada", "pwdold": temporary, "pwdnew": USER_PASSWORD})).await;
    let (_, body) = post("/localaccount/login", None, json!({"user": "ada", "pwd": USER_PASSWORD})).await;
    let ada = body["token"].as_str().expect("ada").to_owned();
    let (status, _) = post("/admin/user/ada/roles", Some(&ada), json!({"roles": ["CreateAdmin", "Admin"]})).await;
    assert_eq!(status, 204);

    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let (status, body) = post("/api/V2/admin/provisiontokens", Some(&ada), json!({"roles": ["node"]})).await;
    assert_eq!(status, 200, "{body}");
    let join_token = body["tokens"][0]["token"].as_str().expect("a token").to_owned();
    // A name inside the cluster (by default the machine's host name).
    let (_, ca) = call(&http, reqwest::Method::GET, url("/api/V2/ca"), None, None).await;
    let host = format!("h.{}", ca["cluster_name"].as_str().expect("the cluster's name"));
    for token in [join_token.as_str(), static_value] {
        let (status, body) =
            post("/api/V2/hosts/join", None, json!({"token": token, "host_id": host, "public_key": key})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post("/api/V2/admin/invites", Some(&ada), json!({"user": "carol"})).await;
    assert_eq!(status, 200, "{body}");
    let invitation = body["token"].as_str().expect("an invitation").to_owned();
    let (status, body) =
        call(&http, reqwest::Method::GET, url(&format!("/web/newuser/{invitation}")), None, None).await;
    assert_eq!(status, 200, "{body}");
    let totp =
        totp_rs::Totp::from_url(body["second_factor"]["otpauth_uri"].as_str().expect("a string field")).expect("TOTP");
    let totp_secret = totp.secret().to_base32();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let body = json!({"invite_token": invitation, "pass": USER_PASSWORD, "second_factor_token": totp.generate(now).to_string()});
    let (status, body) = post("/api/V2/invites/complete", None, body).await;
    assert_eq!(status, 200, "{body}");
    let session = body["token"].as_str().expect("a session").to_owned();
    drop(server);

    let trace = std::fs::read_to_string(&log).expect("the log");
    assert!(trace.contains("/web/newuser/…"), "the invitation's path is logged, redacted");
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("authledger-data/events.db").display()))
            .await
            .expect("open the store");
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT payload, metadata FROM events").fetch_all(&pool).await.expect("events");
    let events: String = events.into_iter().map(|(p, m)| p + &m).collect();
    assert!(events.contains("InviteRedeemed") && events.contains("HostCertIssued"), "the events were scanned");
    let private_keys: Vec<(String,)> =
        sqlx::query_as("SELECT secret FROM secrets WHERE kind LIKE 'ca-%'").fetch_all(&pool).await.expect("keys");
    assert_eq!(private_keys.len(), 2, "both authorities' keys are in the credentials store");
    pool.close().await;
    let mut secrets =
        vec![join_token, static_value.to_owned(), invitation, totp_secret, session, USER_PASSWORD.to_owned()];
    secrets
        .extend(private_keys.into_iter().map(|(k,)| k.lines().filter(|l| !l.starts_with("-----")).collect::<String>()));
    for secret in &secrets {
        assert!(!trace.contains(secret.as_str()), "a secret ({} chars) appears in the trace log", secret.len());
        assert!(!events.contains(secret.as_str()), "a secret ({} chars) appears in an event", secret.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_carry_the_request_call_id() {
    let dir = tempfile::tempdir().expect("dir");
    let created = set_root_password(dir.path(), "sqlite://./authledger-data/events.db", ROOT_PASSWORD);
    assert!(created.status.success());
    let log = dir.path().join("json.log");
    let server = serve(dir.path(), &["--log-format", "json"], &log);
    let http = reqwest::Client::new();
    let body = json!({"user": "***ROOT***", "pwd": ROOT_PASSWORD});
    let (status, answer) =
        call(&http, reqwest::Method::POST, format!("{}/localaccount/login", server.base), None, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().expect("a token").to_owned();
    let (status, _) =
        call(&http, reqwest::Method::GET, format!("{}/api/V2/token", server.base), Some(&token), None).await;
    assert_eq!(status, 200);
    drop(server);
    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.starts_with("authledger listening on "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "projections caught up"), "{text}");
    let introspection = lines
        .iter()
        .find(|l| l["span"]["uri"] == "/api/V2/token" && l["span"]["call_id"].is_string())
        .unwrap_or_else(|| panic!("no line of the introspection names its call id:\n{text}"));
    let call_id = introspection["span"]["call_id"].as_str().expect("a call id");
    assert!(call_id.len() == 16 && call_id.bytes().all(|b| b.is_ascii_digit()), "{call_id}");
    assert!(!text.contains(&token) && !text.contains(ROOT_PASSWORD), "a secret reached the log");
}
