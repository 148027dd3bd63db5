//! Several `authledger serve` processes over one fresh PostgreSQL database
//! act as one service: a token made on one introspects on another at once;
//! a revocation reaches the others within milliseconds (LISTEN/NOTIFY); a
//! server started late catches up; a server whose database connections are
//! cut recovers without a restart; servers racing on one account retry; one
//! server at a time holds the duty lease, and another takes it over.
//!
//! PostgreSQL is required here as everywhere (`AUTHLEDGER_REQUIRE_PG=1` in
//! CI); without it these tests are skipped loudly.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ROOT, ROOT_PASSWORD, USER_PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_authledger");
const POSITION: &str = "x-authledger-position";

/// Replica tests measure latency: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh database, its key file, and the servers started on it.
struct Cluster {
    admin_url: String,
    database: String,
    url: String,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// A running `authledger serve`; killed on drop.
struct Replica {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it as an operator would (SIGTERM), waiting for the exit.
    fn terminate(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Cluster {
    /// A fresh database with root's password set; `None` (after a loud message) without PostgreSQL.
    async fn new() -> Option<Self> {
        let store = crate::common::TestStore::postgres().await?;
        let crate::common::TestStore::Postgres { url: admin_url, .. } = store else {
            return None;
        };
        let database = format!("replicas_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await.expect("the test database");
        sqlx::query(&format!("CREATE DATABASE {database}")).execute(&admin).await.expect("a fresh database");
        admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("a URL");
        url.set_path(&format!("/{database}"));
        let dir = tempfile::tempdir().expect("a directory");
        authledger::app::secrets::new_key(&dir.path().join("secrets.key")).expect("a key file");
        std::fs::write(dir.path().join("authledger.toml"), "[initial]\nallow_login = true\n").expect("a config file");
        let cluster = Self { admin_url, database, url: url.to_string(), dir, http: reqwest::Client::new() };
        let mut child = Command::new(BIN)
            .args(["set-root-password"])
            .args(cluster.store_args("setup"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        child.stdin.take().expect("stdin").write_all(format!("{ROOT_PASSWORD}\n").as_bytes()).expect("written");
        let output = child.wait_with_output().expect("it finishes");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        Some(cluster)
    }

    /// The store flags of a process named `name` (its connections carry the name).
    fn store_args(&self, name: &str) -> Vec<String> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        vec![
            "--store".into(),
            format!("{}{separator}application_name={name}", self.url),
            "--secrets-key-file".into(),
            self.dir.path().join("secrets.key").display().to_string(),
            "--config".into(),
            self.dir.path().join("authledger.toml").display().to_string(),
        ]
    }

    /// Starts a server named `name` and waits until it listens.
    fn start(&self, name: &str) -> Replica {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(self.store_args(name))
            .env_remove("AUTHLEDGER_TEST_MODE")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let base = crate::common::announced_base(&mut child, &log);
        Replica { child, base, log }
    }

    /// Cuts every database connection of the process named `name`.
    async fn cut_connections(&self, name: &str) -> i64 {
        let pool = sqlx::PgPool::connect(&self.url).await.expect("the database");
        let cut: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
        )
        .bind(name)
        .bind(&self.database)
        .fetch_all(&pool)
        .await
        .expect("terminated");
        pool.close().await;
        cut.len() as i64
    }

    async fn drop_database(self) {
        if let Ok(admin) = sqlx::PgPool::connect(&self.admin_url).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)).execute(&admin).await;
            admin.close().await;
        }
    }

    async fn call(&self, method: reqwest::Method, url: String, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, url).header("Accept", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let position = response.headers().get(POSITION).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let text = response.text().await.unwrap_or_default();
        Reply { status, position, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    async fn login(&self, on: &Replica, user: &str, password: &str) -> String {
        let reply = self
            .call(
                reqwest::Method::POST,
                on.url("/localaccount/login"),
                None,
                Some(json!({"user": user, "pwd": password})),
            )
            .await;
        assert_eq!(reply.status, 200, "login of {user}: {}", reply.text);
        reply.body["token"].as_str().expect("a token").to_owned()
    }

    /// A local account made through `on` by root, logged in there; its Login token.
    async fn user(&self, on: &Replica, name: &str) -> String {
        let root = self.login(on, ROOT, ROOT_PASSWORD).await;
        let body = json!({"user": name, "display": format!("User {name}"), "email": format!("{name}@example.org")});
        let created =
            self.call(reqwest::Method::POST, on.url("/admin/localaccount/create"), Some(&root), Some(body)).await;
        assert_eq!(created.status, 200, "{}", created.text);
        let temporary = created.body["pwd"].as_str().expect("a temporary password").to_owned();
        let body = json!({"user": name, "pwdold": temporary, "pwdnew": USER_PASSWORD});
        let reset = self.call(reqwest::Method::POST, on.url("/localaccount/reset"), None, Some(body)).await;
        assert_eq!(reset.status, 204, "{}", reset.text);
        self.login(on, name, USER_PASSWORD).await
    }

    /// An administrator (CreateAdmin, then Admin, the upstream way) made through `on`; its Login token.
    async fn admin(&self, on: &Replica) -> String {
        let root = self.login(on, ROOT, ROOT_PASSWORD).await;
        let token = self.user(on, "boss").await;
        let url = on.url("/admin/user/boss/roles");
        let by_root =
            self.call(reqwest::Method::POST, url.clone(), Some(&root), Some(json!({"roles": ["CreateAdmin"]})));
        assert_eq!(by_root.await.status, 204);
        let body = json!({"roles": ["CreateAdmin", "Admin"]});
        assert_eq!(self.call(reqwest::Method::POST, url, Some(&token), Some(body)).await.status, 204);
        token
    }

    /// An Agent token made through `on`: its value, id and the position it was committed at.
    async fn agent_token(&self, on: &Replica, login: &str, name: &str) -> (String, String, i64) {
        let made =
            self.call(reqwest::Method::POST, on.url("/api/V2/token"), Some(login), Some(json!({"name": name}))).await;
        assert_eq!(made.status, 200, "{}", made.text);
        let value = made.body["token"].as_str().expect("a token").to_owned();
        let id = made.body["id"].as_str().expect("an id").to_owned();
        (value, id, made.position.expect("a write answers its position"))
    }

    /// `GET path` on `on` with `token`, carrying `X-Authledger-Position: position`.
    async fn read_at(&self, on: &Replica, path: &str, token: &str, position: &str) -> Reply {
        let url = on.url(path);
        let request = self.http.get(url).header("Authorization", token).header(POSITION, position);
        let response = request.header("Accept", "application/json").send().await.expect("answered");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Reply { status, position: None, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    async fn introspect(&self, on: &Replica, token: &str) -> Reply {
        self.call(reqwest::Method::GET, on.url("/api/V2/token"), Some(token), None).await
    }

    /// A gauge or counter of `on`'s `/metrics`.
    async fn metric(&self, on: &Replica, name: &str) -> Option<f64> {
        let text = self.http.get(on.url("/metrics")).send().await.ok()?.text().await.ok()?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    position: Option<i64>,
    body: Value,
    text: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_made_on_one_server_introspect_on_another_at_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start("replica-a"), cluster.start("replica-b"));
    let login = cluster.user(&a, "reader").await;
    let mut refused = Vec::new();
    for i in 0..1000 {
        let (token, _, _) = cluster.agent_token(&a, &login, &format!("t{i}")).await;
        let seen = cluster.introspect(&b, &token).await;
        if seen.status != 200 || seen.body["user"] != "reader" {
            refused.push(format!("{i}: {} {}", seen.status, seen.text));
        }
    }
    assert_eq!(refused, Vec::<String>::new(), "tokens made on A and refused by B");
    // The login made on A works on B for writes too, and B's write answers its own position.
    let (_, _, position) = cluster.agent_token(&b, &login, "made on b").await;
    let on_a = cluster.call(reqwest::Method::GET, a.url("/api/V2/me"), Some(&login), None).await;
    assert_eq!(on_a.status, 200, "{}", on_a.text);
    assert!(position > 1000, "positions are the shared log's: {position}");
    drop((a, b));
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_carrying_a_position_waits_for_it_and_a_position_beyond_the_log_is_refused() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start("replica-a"), cluster.start("replica-b"));
    let login = cluster.user(&a, "writer").await;
    let put = cluster
        .call(reqwest::Method::PUT, a.url("/api/V2/me"), Some(&login), Some(json!({"display": "Renamed on A"})))
        .await;
    assert_eq!(put.status, 204, "{}", put.text);
    let position = put.position.expect("the write's position");
    let read = cluster.read_at(&b, "/api/V2/me", &login, &position.to_string()).await;
    assert_eq!(read.status, 200);
    let me = read.body;
    assert_eq!(me["display"], "Renamed on A");
    for (value, message) in [
        ("12345678", "is beyond the end of the log"),
        ("soon", "must be a position the server answered a write with"),
        ("-3", "must be a position the server answered a write with"),
    ] {
        let refused = cluster.read_at(&b, "/api/V2/me", &login, value).await;
        assert_eq!(refused.status, 400, "{value}");
        let body = refused.body;
        assert_eq!(body["error"]["appcode"], 30001, "{body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains(message), "{body}");
    }
    drop((a, b));
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_disables_reach_the_other_server_within_fifty_milliseconds() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start("replica-a"), cluster.start("replica-b"));
    let login = cluster.user(&a, "revoker").await;
    let mut delays = Vec::new();
    for i in 0..100 {
        let (token, id, _) = cluster.agent_token(&a, &login, &format!("r{i}")).await;
        assert_eq!(cluster.introspect(&b, &token).await.status, 200);
        let revoked =
            cluster.call(reqwest::Method::DELETE, a.url(&format!("/tokens/revoke/{id}")), Some(&login), None).await;
        assert_eq!(revoked.status, 204, "{}", revoked.text);
        let answered = Instant::now();
        loop {
            let seen = cluster.introspect(&b, &token).await;
            if seen.status == 401 {
                break;
            }
            assert_eq!(seen.status, 200, "{}", seen.text);
            assert!(answered.elapsed() < Duration::from_secs(5), "the revocation never reached B");
        }
        delays.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&delays, 0.50), percentile(&delays, 0.99));
    eprintln!("revocation on A refused by B after: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms", delays[99]);
    assert!(p99 <= 50.0, "p99 {p99:.1} ms: {delays:?}");
    // Revoke-all and a disable reach B too.
    let (token, _, _) = cluster.agent_token(&a, &login, "before revoke-all").await;
    assert_eq!(cluster.introspect(&b, &token).await.status, 200);
    let all = cluster.call(reqwest::Method::POST, a.url("/tokens/revokeall"), Some(&login), None).await;
    assert_eq!(all.status, 204, "{}", all.text);
    let answered = Instant::now();
    while cluster.introspect(&b, &token).await.status != 401 {
        assert!(answered.elapsed() < Duration::from_secs(1), "revoke-all never reached B");
    }
    // So does disabling the account, by an Admin on A.
    let admin = cluster.admin(&a).await;
    let login = cluster.login(&a, "revoker", USER_PASSWORD).await;
    assert_eq!(cluster.introspect(&b, &login).await.status, 200);
    let body = json!({"disable": true, "disabledreason": "left the company"});
    let disabled =
        cluster.call(reqwest::Method::POST, a.url("/admin/user/revoker/disable"), Some(&admin), Some(body)).await;
    assert_eq!(disabled.status, 204, "{}", disabled.text);
    let answered = Instant::now();
    loop {
        let seen = cluster.call(reqwest::Method::GET, b.url("/api/V2/me"), Some(&login), None).await;
        if seen.status == 403 || seen.status == 401 {
            break;
        }
        assert!(answered.elapsed() < Duration::from_secs(1), "the disable never reached B");
    }
    eprintln!("disable on A refused by B after {:.1} ms", answered.elapsed().as_secs_f64() * 1000.0);
    drop((a, b));
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_late_catches_up_and_one_server_holds_the_duty_lease() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let a = cluster.start("replica-a");
    let login = cluster.user(&a, "early").await;
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(cluster.agent_token(&a, &login, &format!("e{i}")).await.0);
    }
    let c = cluster.start("replica-c");
    for token in &tokens {
        assert_eq!(cluster.introspect(&c, token).await.status, 200);
    }
    let ready = cluster.http.get(c.url("/readyz")).send().await.expect("answered");
    assert_eq!(ready.status(), 200);
    // A started first: it holds the lease, C does not.
    assert_eq!(cluster.metric(&a, "authledger_duty_lease_held").await, Some(1.0));
    assert_eq!(cluster.metric(&c, "authledger_duty_lease_held").await, Some(0.0));
    // A goes; C takes the duties over within a few lease checks.
    a.terminate();
    let since = Instant::now();
    while cluster.metric(&c, "authledger_duty_lease_held").await != Some(1.0) {
        assert!(since.elapsed() < Duration::from_secs(15), "C never took the duty lease over:\n{}", c.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A checkpoint A wrote at shutdown lets a new server start from it.
    let d = cluster.start("replica-d");
    assert!(d.log_text().contains("loaded a checkpoint"), "{}", d.log_text());
    assert_eq!(cluster.introspect(&d, &tokens[0]).await.status, 200);
    drop((c, d));
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_database_connections_are_cut_recovers_without_restart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start("replica-a"), cluster.start("replica-b"));
    let login = cluster.user(&a, "steady").await;
    let (before, before_id, _) = cluster.agent_token(&a, &login, "before the cut").await;
    assert_eq!(cluster.introspect(&b, &before).await.status, 200);
    let cut = cluster.cut_connections("replica-b").await;
    assert!(cut >= 2, "B's pool and listener connections were cut ({cut})");
    // What B holds in memory keeps answering; what it must read comes back with new connections.
    assert_eq!(cluster.introspect(&b, &before).await.status, 200);
    let since = Instant::now();
    let (after, _, _) = cluster.agent_token(&a, &login, "after the cut").await;
    loop {
        let seen = cluster.introspect(&b, &after).await;
        if seen.status == 200 {
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(10), "B never recovered: {}\n{}", seen.text, b.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The listener is back: a revocation reaches B without a read of its own.
    let revoked =
        cluster.call(reqwest::Method::DELETE, a.url(&format!("/tokens/revoke/{before_id}")), Some(&login), None).await;
    assert_eq!(revoked.status, 204);
    let since = Instant::now();
    while cluster.introspect(&b, &before).await.status != 401 {
        assert!(since.elapsed() < Duration::from_secs(5), "the revocation never reached B after the cut");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // B writes again.
    cluster.agent_token(&b, &login, "made on b after the cut").await;
    drop((a, b));
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_racing_on_one_account_retry_and_never_answer_500() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let servers = [cluster.start("replica-a"), cluster.start("replica-b"), cluster.start("replica-c")];
    let login = cluster.user(&servers[0], "raced").await;
    let updates = (0..150).map(|i| {
        let url = servers[i % 3].url("/api/V2/me");
        cluster.call(reqwest::Method::PUT, url, Some(&login), Some(json!({"display": format!("Racer {i}")})))
    });
    let replies = futures::future::join_all(updates).await;
    let failed: Vec<String> =
        replies.iter().filter(|r| r.status != 204).map(|r| format!("{} {}", r.status, r.text)).collect();
    assert_eq!(failed, Vec::<String>::new(), "every update lands");
    // Each server reads the same final name once it holds the newest position.
    let newest = replies.iter().filter_map(|r| r.position).max().expect("positions");
    let mut names = Vec::new();
    for server in &servers {
        let me = cluster.read_at(server, "/api/V2/me", &login, &newest.to_string()).await;
        names.push(me.body["display"].clone());
    }
    assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
    drop(servers);
    cluster.drop_database().await;
}

/// A person forgotten through one server is gone on the other: their tokens
/// stop working there, nothing resolves them, and what the other server held
/// of them in memory (another account's record naming them) names the
/// pseudonym within seconds, as the log does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_forgotten_on_one_server_is_gone_on_the_other() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start("replica-a"), cluster.start("replica-b"));
    let boss = cluster.admin(&a).await;
    let zelda = cluster.user(&a, "zelda").await;
    cluster.user(&a, "bob").await;
    async fn post(cluster: &Cluster, url: String, token: &str, body: Value) -> Reply {
        cluster.call(reqwest::Method::POST, url, Some(token), Some(body)).await
    }
    let (boss, zelda) = (boss.as_str(), zelda.as_str());
    let granted = post(&cluster, a.url("/admin/user/zelda/roles"), boss, json!({"roles": ["Admin"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    let (agent, _, _) = cluster.agent_token(&a, zelda, "laptop").await;
    // As an Admin she disables bob and enables him again: his record names her, on both servers.
    let body = json!({"disable": true, "disabledreason": "checking"});
    assert_eq!(post(&cluster, a.url("/admin/user/bob/disable"), zelda, body).await.status, 204);
    let enabled = post(&cluster, a.url("/admin/user/bob/disable"), zelda, json!({"disable": false})).await;
    assert_eq!(enabled.status, 204, "{}", enabled.text);
    let position = enabled.position.expect("a write answers its position").to_string();
    let bob_on_b = cluster.read_at(&b, "/admin/user/bob", boss, &position).await;
    assert_eq!(bob_on_b.body["enabletoggledby"], "zelda", "{}", bob_on_b.text);

    let forgot = post(&cluster, a.url("/admin/user/zelda/forget"), boss, json!({"reason": "asked"})).await;
    assert_eq!(forgot.status, 204, "{}", forgot.text);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let toggled = cluster.call(reqwest::Method::GET, b.url("/admin/user/bob"), Some(boss), None).await;
        let by = toggled.body["enabletoggledby"].as_str().unwrap_or_default().to_owned();
        if by.starts_with("forgotten-") {
            break;
        }
        assert!(Instant::now() < deadline, "B still names her in bob's record: {by}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for token in [zelda, agent.as_str()] {
        let seen = cluster.introspect(&b, token).await;
        assert_eq!((seen.status, seen.body["error"]["appcode"].clone()), (401, json!(10020)), "{}", seen.text);
    }
    let user = cluster.call(reqwest::Method::GET, b.url("/admin/user/zelda"), Some(boss), None).await;
    assert_eq!(user.status, 404, "{}", user.text);
    let listed = cluster.call(reqwest::Method::GET, b.url("/api/V2/users/?list=zelda,bob"), Some(boss), None).await;
    assert_eq!(listed.body, json!({"bob": "User bob"}));
    assert!(b.log_text().contains("the projections were folded afresh after a forget"), "{}", b.log_text());
    drop((a, b));
    cluster.drop_database().await;
}
