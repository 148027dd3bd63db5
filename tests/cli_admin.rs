//! The administrative commands end to end: `authledger tokens add|ls|rm` and
//! `authledger users add|forget` run as processes against a running server (on both
//! stores), with an Admin's token from the environment; and a malformed
//! static token in the configuration stops `serve` with an error naming it.

use crate::common;

use std::process::{Command, Output};

use common::{Harness, USER_PASSWORD};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_authledger");

fn run(h: &Harness, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--server", &h.base])
        .env("AUTHLEDGER_ADMIN_TOKEN", token)
        .env_remove("AUTHLEDGER_SERVER")
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn tokens_are_added_listed_and_removed_from_the_command_line(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let text = stdout(&run(&h, &admin, &["tokens", "add", "--roles", "node", "--ttl", "15m"]));
    assert!(text.starts_with("1 provisioning token for role(s) node, valid for 15m (until "), "{text}");
    let value = text.lines().nth(1).unwrap_or_default().trim().to_owned();
    assert_eq!(value.len(), 32, "{text}");
    assert!(text.contains(&format!("curl -sf -X POST {}/api/V2/hosts/join", h.base)), "{text}");
    assert!(text.contains(&format!("\"token\":\"{value}\"")), "the join command carries the token: {text}");

    let json_out = stdout(&run(
        &h,
        &admin,
        &["tokens", "add", "--roles", "node,proxy", "--ttl", "1h", "--count", "2", "--format", "json"],
    ));
    let listed: Vec<String> = serde_json::from_str(&json_out).expect("a JSON list of tokens");
    assert_eq!(listed.len(), 2);

    let table = stdout(&run(&h, &admin, &["tokens", "ls"]));
    assert_eq!(table.lines().count(), 4, "a header and three tokens: {table}");
    assert!(!table.contains(&value), "no values in the list");
    let json_list: Value =
        serde_json::from_str(&stdout(&run(&h, &admin, &["tokens", "ls", "--format", "json"]))).expect("JSON");
    let id = json_list["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["roles"] == json!(["node"]))
        .map(|t| t["id"].as_str().expect("a string field").to_owned())
        .expect("the node token");
    assert_eq!(stdout(&run(&h, &admin, &["tokens", "rm", &id])), format!("deleted provisioning token {id}\n"));
    let join = json!({"token": value, "host_id": "h1.example.org", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"});
    h.post("/api/V2/hosts/join", None, join)
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired provisioning token");

    let refused = run(&h, &admin, &["tokens", "add", "--roles", "node,admin"]);
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "authledger: the server refused: 30001 Illegal input parameter: Unknown host role \"admin\": expected one of node, proxy, auth"
    );
    let alice = h.user_token(&admin, "alice").await;
    let denied = run(&h, &alice, &["tokens", "ls"]);
    assert_eq!(String::from_utf8_lossy(&denied.stderr).trim(), "authledger: the server refused: 20000 Unauthorized");
    let missing = Command::new(BIN)
        .args(["tokens", "ls", "--server", &h.base])
        .env_remove("AUTHLEDGER_ADMIN_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "authledger: set AUTHLEDGER_ADMIN_TOKEN (or --token-file) to an Admin's token"
    );
    h
}
on_both_stores!(tokens_are_added_listed_and_removed_from_the_command_line);

async fn users_are_invited_from_the_command_line(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let text = stdout(&run(
        &h,
        &admin,
        &["users", "add", "carol", "--logins", "carol,deploy", "--identity", "github:carol@example.org"],
    ));
    assert!(text.starts_with("Invited carol. The invitation is valid until "), "{text}");
    let url = text.lines().last().unwrap_or_default().to_owned();
    let prefix = format!("{}/web/newuser/", h.base);
    assert!(url.starts_with(&prefix), "{text}");
    let token = url.trim_start_matches(&prefix).to_owned();
    let totp = h.open_invitation(&token).await;
    let body = json!({"invite_token": token, "pass": USER_PASSWORD, "second_factor_token": h.code(&totp)});
    let done = h.post("/api/V2/invites/complete", None, body).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let record = h.get("/admin/user/carol", Some(&admin)).await;
    assert_eq!(record.status, 200, "{}", record.text);

    let bad = run(&h, &admin, &["users", "add", "dan", "--identity", "github"]);
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "authledger: --identity \"github\": expected connector:email, e.g. github:alice@example.org"
    );
    let json_out: Value =
        serde_json::from_str(&stdout(&run(&h, &admin, &["users", "add", "erin", "--ttl", "10m", "--format", "json"])))
            .expect("JSON");
    assert_eq!(json_out["user"], json!("erin"));
    assert!(json_out["url"].as_str().is_some_and(|u| u.starts_with(&prefix)));
    let too_long = run(&h, &admin, &["users", "add", "fay", "--ttl", "2h"]);
    assert_eq!(
        String::from_utf8_lossy(&too_long.stderr).trim(),
        "authledger: the server refused: 30001 Illegal input parameter: ttl must be between 1 and 3600 seconds"
    );
    h
}
on_both_stores!(users_are_invited_from_the_command_line);

async fn a_user_is_forgotten_from_the_command_line(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "gwen").await;
    let text = stdout(&run(&h, &admin, &["users", "forget", "gwen", "--reason", "asked to be forgotten"]));
    assert_eq!(text.trim(), "Forgot gwen: the log names them no more.");
    h.get("/api/V2/token", Some(&login)).await.assert_error(401, "10020 Invalid token");
    h.get("/admin/user/gwen", Some(&admin)).await.assert_error(404, "50000 No such user: gwen");
    let again = run(&h, &admin, &["users", "forget", "gwen", "--reason", "twice"]);
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "authledger: the server refused: 50000 No such user: gwen"
    );
    let no_reason = run(&h, &admin, &["users", "forget", "gwen"]);
    assert!(!no_reason.status.success(), "clap requires --reason");
    h
}
on_both_stores!(a_user_is_forgotten_from_the_command_line);

#[test]
fn a_malformed_static_token_stops_serve_naming_it() {
    let dir = tempfile::tempdir().expect("a directory");
    let config = dir.path().join("authledger.toml");
    std::fs::write(&config, "static_tokens = [\"node:8c2a1f0e9d3b7c64\", \"nodes:s3cr3tvalue\"]\n").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("AUTHLEDGER_STORE")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "authledger: invalid setting static_tokens: entry 2: static token \"nodes:…\": Unknown host role \"nodes\": expected one of node, proxy, auth"
    );
    assert!(!stderr.contains("s3cr3tvalue"), "the value is never printed");
}
