//! Measurement tool behind `bench/run.sh` (not a timed test). Subcommands:
//!
//! - `seed`: a user and N live tokens, appended as real `TokenIssued` events
//!   through the store (the bulk path), plus a Login token for HTTP load;
//!   writes token values to files for wrk.
//! - `forget`: a forget over HTTP of a person seeded with `seed --person`,
//!   with an introspection probe and a token-making probe running meanwhile.
//! - `commit-rate`: one-event commands (token issues) through the command bus
//!   and the store, from T tasks: the raw commit rate.
//! - `memory`: bytes the token index holds per live token (counted by the
//!   allocator) and the process's resident-memory growth per token.
//! - `catch-up`: how long folding the whole log into the projections takes.
//! - `logins`: full provider logins per second against a running server and
//!   its OpenID Connect provider (start → the provider's sign-in → the way
//!   back, straight in), beside local password logins on the same server.
//! - `replicas`: two running servers on one log — tokens made on A and
//!   introspected on B at once (the success rate), and how long a revocation
//!   on A takes to be refused by B (p50/p99), one at a time (light load).
//! - `secrets`: what sealing costs a password login: sealing and opening one
//!   stored secret (XChaCha20-Poly1305 under the key file) beside one argon2id
//!   check, which every password login pays anyway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measurement tool: a failed step must stop it loudly

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use authledger::app::commands::CommandBus;
use authledger::app::ledger::{Ledger, LedgerOptions};
use authledger::clock::{Clock, SystemClock};
use authledger::domain::canonical::Canonicalization;
use authledger::domain::token::{ClientInfo, Mfa, TokenIssued};
use authledger::domain::{
    Actor, DisplayName, LedgerEvent, Role, TokenCommand, TokenEvent, TokenKind, TokenName, UserCommand, UserName,
};
use authledger::domain::{Token, User};
use authledger::projections::token_index::encode_hash;
use authledger::projections::{Fold, Projections, Runner, SharedProjections, hash_token};
use authledger::store::{EventLog, EventMetadata, Store, StoreOptions};
use clap::{Parser, Subcommand};
use cqrs_es::DomainEvent;
use cqrs_es::persist::SerializedEvent;
use data_encoding::BASE32;
use rand::RngCore;
use uuid::Uuid;

struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Secrets {
        #[arg(long, default_value_t = 100_000)]
        count: u32,
    },
    Seed {
        #[arg(long)]
        store: String,
        #[arg(long, default_value_t = 1_000_000)]
        tokens: usize,
        /// Where to write a sample of the seeded tokens (one per line).
        #[arg(long)]
        tokens_out: String,
        #[arg(long, default_value_t = 100_000)]
        sample: usize,
        /// Where to write a Login token of the seeded user.
        #[arg(long)]
        login_out: String,
        /// Make the seeded user an administrator (for the page benchmarks).
        #[arg(long)]
        admin: bool,
        /// Also a second user, to be forgotten, holding `person_tokens` of the
        /// tokens (spread through the log).
        #[arg(long)]
        person: Option<String>,
        #[arg(long, default_value_t = 0)]
        person_tokens: usize,
    },
    /// A forget over HTTP while two probes run: one introspecting, one making
    /// tokens; reports how long the forget took and what the probes waited.
    Forget {
        #[arg(long)]
        base: String,
        /// A file holding an Admin's Login token (also the probes' token).
        #[arg(long)]
        admin_token_file: String,
        #[arg(long)]
        person: String,
    },
    CommitRate {
        #[arg(long)]
        store: String,
        #[arg(long, default_value_t = 16)]
        tasks: usize,
        #[arg(long, default_value_t = 20_000)]
        commands: usize,
        #[arg(long)]
        sqlite_normal: bool,
    },
    Memory {
        #[arg(long, default_value_t = 1_000_000)]
        tokens: usize,
    },
    CatchUp {
        #[arg(long)]
        store: String,
    },
    Replicas {
        /// The server tokens are made and revoked on.
        #[arg(long)]
        a: String,
        /// The server they are introspected on.
        #[arg(long)]
        b: String,
        /// A file holding a Login token.
        #[arg(long)]
        login_file: String,
        #[arg(long, default_value_t = 1_000)]
        count: usize,
        #[arg(long, default_value_t = 200)]
        revocations: usize,
    },
    /// Password guesses: bursts and a sustained attack against a running
    /// server (its process `pid` is read for memory), beside one honest client.
    Guesses {
        #[arg(long)]
        base: String,
        /// A file holding an Admin's Login token.
        #[arg(long)]
        admin_token_file: String,
        /// The server's process id (its RSS is read from /proc).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 256)]
        guessers: usize,
    },
    Logins {
        /// The server's base URL; its provider `OIDC` must know `{base}/login/complete/OIDC`.
        #[arg(long)]
        base: String,
        /// A file holding an Admin's Login token.
        #[arg(long)]
        admin_token_file: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

fn new_token() -> String {
    let mut secret = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut secret);
    BASE32.encode(&secret)
}

fn grant(user: &UserName, token: &str, kind: TokenKind, n: usize, now: i64) -> TokenIssued {
    TokenIssued {
        token_hash: encode_hash(&hash_token(token)),
        kind,
        user: user.clone(),
        name: TokenName::parse(Some(&format!("bench {n}"))).ok(),
        created: now,
        expires: now + 365 * 86_400_000,
        custom: BTreeMap::new(),
        client: ClientInfo { ip: Some("127.0.0.1".into()), ..ClientInfo::default() },
        mfa: if kind == TokenKind::Login { Mfa::NotUsed } else { Mfa::Unknown },
    }
}

fn serialized(id: Uuid, event: TokenEvent) -> SerializedEvent {
    SerializedEvent::new(
        id.to_string(),
        1,
        "Token".into(),
        event.event_type(),
        event.event_version(),
        serde_json::to_value(&event).unwrap_or_default(),
        serde_json::json!({"actor": "bench", "reason": "bench seed"}),
    )
}

fn resident_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn create_user(ledger: &Ledger, user: &UserName, display: &str) {
    if ledger.projections.read().users.get(user).is_some() {
        return;
    }
    let create = UserCommand::Create {
        user: user.clone(),
        display: DisplayName::parse(Some(display)).expect("display"),
        email: None,
        anon_id: Uuid::new_v4(),
        created: ledger.now(),
        by: UserName::root(),
        password: None,
    };
    ledger.execute::<User>(user, create, &EventMetadata::actor("bench")).await.expect("user");
}

async fn seed(
    store: String,
    tokens: usize,
    tokens_out: String,
    sample: usize,
    login_out: String,
    admin: bool,
    person: Option<(UserName, usize)>,
) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut options = LedgerOptions::new(store.clone());
    options.store.sqlite_full_sync = false;
    if let Some(path) = std::env::var_os("AUTHLEDGER_SECRETS_KEY_FILE") {
        options.store.secrets_key = authledger::store::SecretsKey::File(path.into());
    }
    let ledger = Ledger::open(options, clock.clone()).await.expect("open");
    let user = UserName::parse(Some("bench")).expect("name");
    let meta = EventMetadata::actor("bench");
    create_user(&ledger, &user, "Bench User").await;
    // Every `every`-th token is the person's, so their rows lie all through the log.
    let (person, every) = match person {
        Some((name, count)) if count > 0 => {
            create_user(&ledger, &name, "Person To Forget").await;
            (Some(name), tokens / count.min(tokens))
        }
        _ => (None, usize::MAX),
    };
    if admin {
        // Granted as root's CreateAdmin would (the grant rules apply).
        let actor = Actor { name: UserName::root(), roles: [Role::CreateAdmin].into() };
        let grant = UserCommand::UpdateRoles {
            add: [Role::Admin].into(),
            remove: Default::default(),
            actor,
            at: clock.now_ms(),
        };
        ledger.execute::<User>(&user, grant, &meta).await.expect("the Admin role");
    }
    let login = new_token();
    let now = clock.now_ms();
    ledger
        .execute::<Token>(
            Uuid::new_v4(),
            TokenCommand::Issue(Box::new(grant(&user, &login, TokenKind::Login, 0, now))),
            &meta,
        )
        .await
        .expect("login");
    std::fs::write(&login_out, &login).expect("login file");

    let started = Instant::now();
    let workers = 256;
    let per_worker = tokens.div_ceil(workers);
    let mut handles = Vec::new();
    for w in 0..workers {
        let log: EventLog = ledger.log.clone();
        let (user, person) = (user.clone(), person.clone());
        let keep = sample.div_ceil(workers);
        handles.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..per_worker {
                let n = w * per_worker + i;
                if n >= tokens {
                    break;
                }
                let token = new_token();
                let theirs = person.as_ref().filter(|_| n % every == every - 1);
                let event = TokenEvent::TokenIssued(grant(theirs.unwrap_or(&user), &token, TokenKind::Agent, n, now));
                log.append(vec![serialized(Uuid::new_v4(), event)]).await.expect("append");
                if theirs.is_none() && kept.len() < keep {
                    kept.push(token);
                }
            }
            kept
        }));
    }
    let mut file = std::fs::File::create(&tokens_out).expect("tokens file");
    for handle in handles {
        for token in handle.await.expect("worker") {
            writeln!(file, "{token}").expect("write");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("seeded {tokens} tokens in {seconds:.1} s ({:.0} events/s)", tokens as f64 / seconds);
    ledger.close().await;
}

async fn commit_rate(store: String, tasks: usize, commands: usize, sqlite_normal: bool) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let options = StoreOptions { sqlite_full_sync: !sqlite_normal, ..StoreOptions::default() };
    let log = Store::open(&store, options, clock.clone()).await.expect("open").log;
    let bus = Arc::new(CommandBus::new(&log, Arc::new(|_| {})));
    let user = UserName::parse(Some("rate")).expect("name");
    let started = Instant::now();
    let per_task = commands / tasks;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let bus = bus.clone();
        let user = user.clone();
        let now = clock.now_ms();
        handles.push(tokio::spawn(async move {
            let meta = EventMetadata::actor("bench");
            for i in 0..per_task {
                let command =
                    TokenCommand::Issue(Box::new(grant(&user, &new_token(), TokenKind::Agent, t * per_task + i, now)));
                bus.execute::<Token>(&Uuid::new_v4(), command, &meta).await.expect("command");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("task");
    }
    let seconds = started.elapsed().as_secs_f64();
    let done = per_task * tasks;
    let store = match log.kind() {
        "sqlite" if sqlite_normal => "sqlite(synchronous=NORMAL)",
        "sqlite" => "sqlite(synchronous=FULL)",
        other => other,
    };
    println!(
        "commit-rate store={store} tasks={tasks} commands={done} seconds={seconds:.2} rate={:.0}",
        done as f64 / seconds
    );
    log.close().await;
}

fn memory(tokens: usize) {
    let mut projections = Projections::new(Canonicalization::default());
    let user = UserName::parse(Some("bench")).expect("name");
    // Warm up the owner table so the per-token figure is only tokens.
    let rss_before = resident_kib();
    let allocated_before = ALLOCATED.load(Ordering::Relaxed);
    let now = 1_800_000_000_000;
    for n in 0..tokens {
        let event = LedgerEvent::Token(TokenEvent::TokenIssued(grant(&user, &new_token(), TokenKind::Agent, n, now)));
        projections.apply(n as i64 + 1, now, &Uuid::new_v4().to_string(), 1, &event);
    }
    let allocated = ALLOCATED.load(Ordering::Relaxed) - allocated_before;
    let rss = (resident_kib() - rss_before) * 1024;
    println!(
        "memory tokens={tokens} live={} allocated_bytes_per_token={:.1} rss_bytes_per_token={:.1}",
        projections.tokens.len(),
        allocated as f64 / tokens as f64,
        rss as f64 / tokens as f64
    );
}

/// Reads the whole log in the runner's batches without decoding: the floor under any rebuild.
async fn raw_read(log: &EventLog) -> (u64, f64) {
    let started = Instant::now();
    let (mut after, mut rows) = (0, 0u64);
    loop {
        let batch = log.read_after(after, 2_000).await.expect("read");
        let Some(last) = batch.last() else {
            break;
        };
        after = last.position;
        rows += batch.len() as u64;
    }
    (rows, started.elapsed().as_secs_f64())
}

/// P3: a full rebuild of every projection (the runner's catch-up) against a
/// raw sequential read of the same table, read before and after the rebuild.
async fn catch_up(store: String) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let log = Store::open(&store, StoreOptions::default(), clock).await.expect("open").log;
    let (rows, before) = raw_read(&log).await;
    let projections = Arc::new(SharedProjections::new(Projections::new(Canonicalization::default())));
    let runner = Runner::new(log.clone(), projections.clone());
    let started = Instant::now();
    let folded = runner.catch_up().await.expect("catch up");
    let seconds = started.elapsed().as_secs_f64();
    let (_, after) = raw_read(&log).await;
    let raw_rate = rows as f64 / ((before + after) / 2.0);
    let rate = folded as f64 / seconds;
    println!("catch-up events={folded} seconds={seconds:.2} rate={rate:.0}");
    println!("raw-read rows={rows} seconds={before:.2} (before) {after:.2} (after) rate={raw_rate:.0}");
    println!("P3 ratio: {:.3}  (full rebuild events/s ÷ raw sequential read rows/s; target >= 0.5)", rate / raw_rate);
    log.close().await;
}

/// A client that does not follow redirects, and cookies kept by name.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
        Self { http, cookies: BTreeMap::new() }
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for cookie in response.headers().get_all("set-cookie") {
            let text = cookie.to_str().unwrap_or_default();
            if let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) {
                if text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request.header("Cookie", self.header()).send().await.expect("an answer");
        self.keep(&response);
        response
    }
}

fn location(response: &reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "expected a redirect, got {}", response.status());
    response.headers().get("location").and_then(|l| l.to_str().ok()).expect("a Location").to_owned()
}

/// One full provider login of `sub`: the answer of the way back, and the time
/// spent in the server's two requests (start, way back).
async fn provider_login(base: &str, sub: &str) -> (reqwest::Response, std::time::Duration) {
    let mut ours = Browser::new();
    let mut theirs = Browser::new();
    let started = Instant::now();
    let start = ours.send(ours.http.post(format!("{base}/login/start")).form(&[("provider", "OIDC")])).await;
    let mut spent = started.elapsed();
    let authorize = location(&start);
    let issuer = url::Url::parse(&authorize).expect("the provider's URL");
    let origin = issuer.origin().ascii_serialization();
    let absolute = |l: String| if l.starts_with("http") { l } else { format!("{origin}{l}") };
    let interaction = absolute(location(&theirs.send(theirs.http.get(&authorize)).await));
    let form = [("login", sub), ("amr", "pwd")];
    let resume = absolute(location(&theirs.send(theirs.http.post(format!("{interaction}/login")).form(&form)).await));
    let back = location(&theirs.send(theirs.http.get(&resume)).await);
    let returned = Instant::now();
    let done = ours.send(ours.http.get(back).header("Accept", "application/json")).await;
    spent += returned.elapsed();
    (done, spent)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Provider logins per second (each a full flow, straight in), then local
/// password logins per second, on the same server, `concurrency` at a time.
async fn replicas(a: String, b: String, login_file: String, count: usize, revocations: usize) {
    let login = std::fs::read_to_string(login_file).expect("the Login token").trim().to_owned();
    let http = reqwest::Client::new();
    let make = |n: usize| {
        http.post(format!("{a}/api/V2/token"))
            .header("Authorization", &login)
            .json(&serde_json::json!({"name": format!("replica {n}")}))
            .send()
    };
    let status_on_b = |token: String| {
        let request = http.get(format!("{b}/api/V2/token")).header("Authorization", token).send();
        async move { request.await.expect("B answers").status().as_u16() }
    };
    let mut seen = 0;
    let mut made_ms = Vec::new();
    for n in 0..count {
        let began = Instant::now();
        let made: serde_json::Value = make(n).await.expect("A answers").json().await.expect("a token");
        made_ms.push(began.elapsed().as_secs_f64() * 1000.0);
        let token = made["token"].as_str().expect("a token").to_owned();
        if status_on_b(token).await == 200 {
            seen += 1;
        }
    }
    made_ms.sort_by(f64::total_cmp);
    println!(
        "made on A, introspected on B at once: {seen}/{count} ({:.2} %); POST on A p50 {:.1} ms",
        100.0 * seen as f64 / count as f64,
        made_ms[made_ms.len() / 2]
    );
    let mut delays = Vec::new();
    for n in 0..revocations {
        let made: serde_json::Value = make(count + n).await.expect("A answers").json().await.expect("a token");
        let (token, id) = (made["token"].as_str().expect("a token"), made["id"].as_str().expect("an id"));
        assert_eq!(status_on_b(token.to_owned()).await, 200, "B knows the token");
        let revoked =
            http.delete(format!("{a}/tokens/revoke/{id}")).header("Authorization", &login).send().await.expect("A");
        assert_eq!(revoked.status().as_u16(), 204);
        let answered = Instant::now();
        while status_on_b(token.to_owned()).await != 401 {
            assert!(answered.elapsed().as_secs() < 5, "the revocation never reached B");
        }
        delays.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    let at = |p: f64| delays[((delays.len() as f64 * p).ceil() as usize).clamp(1, delays.len()) - 1];
    println!(
        "revocation on A refused by B after: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} revocations)",
        at(0.5),
        at(0.99),
        at(1.0),
        delays.len()
    );
}

async fn logins(base: String, admin_token_file: String, seconds: u64, concurrency: usize) {
    let admin = std::fs::read_to_string(admin_token_file).expect("the admin's token").trim().to_owned();
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}")).header("Authorization", &admin).json(&body).send()
    };
    assert!(
        post("/admin/config/provider", serde_json::json!({"provider": "OIDC", "enabled": true}))
            .await
            .expect("an answer")
            .status()
            .is_success()
    );
    assert!(
        post("/admin/config", serde_json::json!({"allowlogin": true})).await.expect("an answer").status().is_success()
    );
    // One account per task, created through its first sign-in.
    for task in 0..concurrency {
        let sub = format!("bench-{task}");
        let (done, _) = provider_login(&base, &sub).await;
        if location(&done).ends_with("/me") {
            continue;
        }
        let mut browser = Browser::new();
        browser.keep(&done);
        let choice: serde_json::Value = browser
            .send(browser.http.get(format!("{base}/login/choice")).header("Accept", "application/json"))
            .await
            .json()
            .await
            .expect("the choice");
        let id = choice["create"][0]["id"].as_str().expect("an identity to create from").to_owned();
        let body = serde_json::json!({"id": id, "user": format!("bench{task}"), "display": "Bench", "email": "bench@example.org"});
        let created = browser.send(browser.http.post(format!("{base}/login/create")).json(&body)).await;
        assert_eq!(created.status(), 201, "an account");
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let runs = (0..concurrency).map(|task| {
        let base = base.clone();
        tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let began = Instant::now();
                let (done, spent) = provider_login(&base, &format!("bench-{task}")).await;
                assert!(location(&done).ends_with("/me"), "straight in");
                times.push((began.elapsed().as_secs_f64() * 1000.0, spent.as_secs_f64() * 1000.0));
            }
            times
        })
    });
    let mut times = Vec::new();
    for run in runs {
        times.extend(run.await.expect("a task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut whole: Vec<f64> = times.iter().map(|t| t.0).collect();
    let mut ours: Vec<f64> = times.iter().map(|t| t.1).collect();
    whole.sort_by(f64::total_cmp);
    ours.sort_by(f64::total_cmp);
    println!(
        "provider logins: {:.0}/s over {elapsed:.1} s at {concurrency} at a time; whole flow p50 {:.1} ms p99 {:.1} ms; \
         the server's two requests p50 {:.1} ms p99 {:.1} ms",
        times.len() as f64 / elapsed,
        percentile(&whole, 0.5),
        percentile(&whole, 0.99),
        percentile(&ours, 0.5),
        percentile(&ours, 0.99)
    );
    // The same server's password logins.
    let created: serde_json::Value = post(
        "/admin/localaccount/create",
        serde_json::json!({"user": "runner", "display": "Runner", "email": "runner@example.org"}),
    )
    .await
    .expect("an answer")
    .json()
    .await
    .expect("the temporary password");
    let password = "a long bench passphrase 2024";
    let reset = serde_json::json!({"user": "runner", "pwdold": created["pwd"], "pwdnew": password});
    assert!(
        http.post(format!("{base}/localaccount/reset"))
            .json(&reset)
            .send()
            .await
            .expect("an answer")
            .status()
            .is_success()
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let runs = (0..concurrency).map(|_| {
        let (base, http) = (base.clone(), http.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let began = Instant::now();
                let body = serde_json::json!({"user": "runner", "pwd": password});
                let answer =
                    http.post(format!("{base}/localaccount/login")).json(&body).send().await.expect("an answer");
                assert_eq!(answer.status(), 200, "logged in");
                times.push(began.elapsed().as_secs_f64() * 1000.0);
            }
            times
        })
    });
    let mut times = Vec::new();
    for run in runs {
        times.extend(run.await.expect("a task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    println!(
        "password logins: {:.0}/s at {concurrency} at a time; p50 {:.1} ms p99 {:.1} ms (argon2id)",
        times.len() as f64 / elapsed,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

/// A line of `/proc/PID/status` in MiB (`VmRSS`, `VmHWM`).
fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// A counter or gauge of the server's `/metrics` (summed over its labels).
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = http.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One password login from forwarded address `from`, with device marks `marks`: status and milliseconds.
async fn password_login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    from: &str,
    marks: Option<&str>,
) -> (u16, f64, Option<String>) {
    let mut request = http
        .post(format!("{base}/localaccount/login"))
        .header("X-Forwarded-For", from)
        .json(&serde_json::json!({"user": user, "pwd": password}));
    if let Some(marks) = marks {
        request = request.header("Cookie", format!("authledger_device={marks}"));
    }
    let began = Instant::now();
    let answer = request.send().await.expect("answered: no dropped connection");
    let status = answer.status().as_u16();
    let set = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("authledger_device="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let _ = answer.bytes().await;
    (status, began.elapsed().as_secs_f64() * 1000.0, set)
}

/// `count` requests released at once; the statuses seen, with how many.
async fn burst_of(count: usize, make: impl Fn(usize) -> tokio::task::JoinHandle<u16>) -> BTreeMap<u16, usize> {
    let tasks: Vec<_> = (0..count).map(make).collect();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.expect("a task")).or_insert(0) += 1;
    }
    statuses
}

/// Honest password logins with a device mark for `seconds`: logins/s, p50, p99, and anything but 200.
async fn honest(http: &reqwest::Client, base: &str, marks: &str, seconds: u64) -> (f64, f64, f64, usize) {
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let (mut times, mut refused) = (Vec::new(), 0);
    while Instant::now() < deadline {
        let (status, ms, _) = password_login(http, base, "owner", HONEST_PASSWORD, "192.0.2.1", Some(marks)).await;
        if status == 200 { times.push(ms) } else { refused += 1 }
    }
    times.sort_by(f64::total_cmp);
    (times.len() as f64 / started.elapsed().as_secs_f64(), percentile(&times, 0.5), percentile(&times, 0.99), refused)
}

const HONEST_PASSWORD: &str = "a long bench passphrase 2024";

/// What an attacker's guesses cost and what they leave an honest client:
/// 256 simultaneous wrong passwords against one account and against names
/// that are no account (argon2 runs, the most at once, RSS), an honest
/// client's logins/s alone and while guessers run, and what a wrong
/// password costs for an account and for a name that is none.
async fn guesses(base: String, admin_token_file: String, pid: u32, seconds: u64, guessers: usize) {
    let admin = std::fs::read_to_string(admin_token_file).expect("the admin's token").trim().to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build().expect("a client");
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}")).header("Authorization", &admin).json(&body).send()
    };
    assert!(
        post("/admin/config", serde_json::json!({"allowlogin": true})).await.expect("answer").status().is_success()
    );
    for n in 0..=10 {
        let user = if n == 0 { "owner".to_owned() } else { format!("victim{n}") };
        let body = serde_json::json!({"user": user, "display": "Bench", "email": "bench@example.org"});
        let created: serde_json::Value =
            post("/admin/localaccount/create", body).await.expect("answer").json().await.expect("created");
        let reset = serde_json::json!({"user": user, "pwdold": created["pwd"], "pwdnew": HONEST_PASSWORD});
        let changed = http.post(format!("{base}/localaccount/reset")).json(&reset).send().await.expect("answer");
        assert!(changed.status().is_success(), "{}", changed.text().await.unwrap_or_default());
    }
    let (status, _, marks) = password_login(&http, &base, "owner", HONEST_PASSWORD, "192.0.2.1", None).await;
    assert_eq!(status, 200);
    let marks = marks.expect("a device mark");
    let rss_before = memory_mib(pid, "VmRSS:");

    for (what, target) in [("one account", None), ("names that are no account, from one address", Some(()))] {
        let runs = metric(&http, &base, "authledger_password_checks_total").await;
        let started = Instant::now();
        let statuses = burst_of(guessers, |n| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let (user, from) = match target {
                    None => ("owner".to_owned(), format!("198.18.{}.{}", n / 250, n % 250 + 1)),
                    Some(()) => (format!("nobody{n}"), "198.19.0.1".to_owned()),
                };
                password_login(&http, &base, &user, "wrong guess", &from, None).await.0
            })
        })
        .await;
        let checked = metric(&http, &base, "authledger_password_checks_total").await - runs;
        println!(
            "{guessers} simultaneous wrong passwords against {what}: {checked} checked, answers {statuses:?} in {:.2} s;              the most checks at once {}",
            started.elapsed().as_secs_f64(),
            metric(&http, &base, "authledger_password_checks_running_peak").await
        );
        // The owner's counts end with the next login (the burst's guesses are counted on the account).
        let (status, _, _) = password_login(&http, &base, "owner", HONEST_PASSWORD, "192.0.2.1", Some(&marks)).await;
        assert_eq!(status, 200, "the owner's known device gets in after the burst");
    }
    println!(
        "server memory: RSS {rss_before:.0} MiB before the bursts, {:.0} MiB after; peak {:.0} MiB (VmHWM)",
        memory_mib(pid, "VmRSS:"),
        memory_mib(pid, "VmHWM:")
    );

    let (alone, p50, p99, refused) = honest(&http, &base, &marks, seconds).await;
    println!("honest password logins alone: {alone:.0}/s, p50 {p50:.1} ms p99 {p99:.1} ms, {refused} refused");
    for (what, spray) in [("guessing the owner's password", false), ("spraying names that are no account", true)] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let runs = metric(&http, &base, "authledger_password_checks_total").await;
        let tasks: Vec<_> = (0..guessers)
            .map(|n| {
                let (http, base, stop, sent) = (http.clone(), base.clone(), stop.clone(), sent.clone());
                tokio::spawn(async move {
                    let from = format!("198.{}.{}.{}", if spray { 20 } else { 21 }, n / 250, n % 250 + 1);
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let user = if spray { format!("nobody{n}x{k}") } else { "owner".to_owned() };
                        password_login(&http, &base, &user, "wrong guess", &from, None).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        k += 1;
                    }
                })
            })
            .collect();
        let started = Instant::now();
        let (rate, p50, p99, refused) = honest(&http, &base, &marks, seconds).await;
        let honest_checks = (rate * started.elapsed().as_secs_f64()).round() + refused as f64;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        // Every argon2 run counts: what the honest client's own logins ran is not the guessers'.
        let checked = metric(&http, &base, "authledger_password_checks_total").await - runs - honest_checks;
        println!(
            "honest password logins while {guessers} guessers are {what}: {rate:.0}/s ({:.0}% of alone),              p50 {p50:.1} ms p99 {p99:.1} ms, {refused} refused; the guessers sent {} and got {checked} checks",
            100.0 * rate / alone,
            sent.load(Ordering::Relaxed)
        );
    }

    // What a wrong password costs: an account against a name that is none,
    // alternating, each from a fresh address, none of them throttled.
    let (mut account, mut none) = (Vec::new(), Vec::new());
    for k in 0..80usize {
        let from = format!("198.22.{}.{}", k / 250, k % 250 + 1);
        let (user, into) = if k % 2 == 0 {
            (format!("victim{}", 1 + (k / 2) % 10), &mut account)
        } else {
            (format!("ghost{k}"), &mut none)
        };
        let (status, ms, _) = password_login(&http, &base, &user, "wrong guess", &from, None).await;
        assert_eq!(status, 401);
        into.push(ms);
    }
    account.sort_by(f64::total_cmp);
    none.sort_by(f64::total_cmp);
    println!(
        "a wrong password costs: {:.1} ms for an account, {:.1} ms for a name that is none (medians of 40 each;          p90 {:.1} vs {:.1})",
        percentile(&account, 0.5),
        percentile(&none, 0.5),
        percentile(&account, 0.9),
        percentile(&none, 0.9)
    );
}

/// One probe's requests: when each started and how long it took (ms); how many failed.
#[derive(Default)]
struct Probe {
    answers: Vec<(Instant, f64)>,
    failed: usize,
}

impl Probe {
    /// The requests that started from `from` on, as one line.
    fn report(&self, what: &str, from: Instant) -> String {
        let mut ms: Vec<f64> = self.answers.iter().filter(|(at, _)| *at >= from).map(|(_, ms)| *ms).collect();
        ms.sort_by(f64::total_cmp);
        format!(
            "{what}: {} answered, p50 {:.2} ms, p99 {:.2} ms, longest {:.1} ms",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms.last().copied().unwrap_or(0.0),
        )
    }
}

/// Runs `request` one at a time until `stop`, timing each.
async fn probe<F, Fut>(stop: Arc<std::sync::atomic::AtomicBool>, request: F) -> Probe
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
{
    let mut probe = Probe::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match request().await {
            Ok(answer) if answer.status().is_success() => {
                probe.answers.push((started, started.elapsed().as_secs_f64() * 1e3))
            }
            _ => probe.failed += 1,
        }
    }
    probe
}

/// One forget of `person` while an introspection probe and a token-making
/// probe run, each one request at a time; the probes start a second before
/// the forget and stop when it answers.
async fn forget(base: String, admin_token_file: String, person: String) {
    let admin = std::fs::read_to_string(admin_token_file).expect("the Login token").trim().to_owned();
    let http = reqwest::Client::new();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let introspect = {
        let (http, base, admin, stop) = (http.clone(), base.clone(), admin.clone(), stop.clone());
        tokio::spawn(async move {
            probe(stop, || http.get(format!("{base}/api/V2/token")).header("Authorization", &admin).send()).await
        })
    };
    let make = {
        let (http, base, admin, stop) = (http.clone(), base.clone(), admin.clone(), stop.clone());
        tokio::spawn(async move {
            let body = serde_json::json!({"name": "probe"});
            probe(stop, || http.post(format!("{base}/api/V2/token")).header("Authorization", &admin).json(&body).send())
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let started = Instant::now();
    let answer = http
        .post(format!("{base}/admin/user/{person}/forget"))
        .header("Authorization", &admin)
        .json(&serde_json::json!({"reason": "bench: asked to be forgotten"}))
        .send()
        .await
        .expect("the forget answers");
    let took = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let status = answer.status();
    assert_eq!(status.as_u16(), 204, "the forget: {}", answer.text().await.unwrap_or_default());
    println!("forget: {took:.2} s from request to answer");
    let before = started - std::time::Duration::from_secs(1);
    for (what, probe) in [("introspection", introspect), ("token creation", make)] {
        let probe = probe.await.expect("the probe");
        assert_eq!(probe.failed, 0, "{what}: every request of the probe succeeds");
        let during = probe.report(&format!("{what} during it"), started);
        let all = probe.report("from a second before", before);
        println!("  {during} ({all})");
    }
}

async fn secrets(count: u32) {
    use authledger::store::keyring::Keyring;
    let path = std::env::temp_dir().join(format!("authledger-bench-{}.key", std::process::id()));
    let keyring = Keyring::create(&path, None).expect("a key file");
    use authledger::app::passwords::{PasswordWork, PasswordWorkSettings};
    let work = PasswordWork::new(PasswordWorkSettings::default());
    let slot = work.slot().await.expect("a permit");
    let hash = slot.hash("correct horse battery staple 77".into()).await.expect("a hash");
    let started = std::time::Instant::now();
    for n in 0..count {
        let id = format!("{n}");
        let sealed = keyring.seal(&id, "password", &hash).expect("sealed");
        assert_eq!(keyring.open_secret(&id, "password", &sealed).expect("opened").len(), hash.len());
    }
    let seal_open_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(count);
    let rounds = 20;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        assert!(slot.verify("correct horse battery staple 77".into(), Some(hash.clone())).await);
    }
    let argon2_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    let _ = std::fs::remove_file(&path);
    println!(
        "seal+open of one stored secret: {seal_open_us:.2} µs; one argon2id check: {argon2_us:.0} µs; sealing adds {:.3}% to a password check",
        100.0 * seal_open_us / argon2_us
    );
}

fn main() {
    // `cargo bench` passes `--bench`; drop it.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let cli = Cli::parse_from(args);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match cli.command {
        Command::Seed { store, tokens, tokens_out, sample, login_out, admin, person, person_tokens } => {
            let person = person.map(|name| (UserName::parse(Some(&name)).expect("a user name"), person_tokens));
            runtime.block_on(seed(store, tokens, tokens_out, sample, login_out, admin, person))
        }
        Command::Forget { base, admin_token_file, person } => runtime.block_on(forget(base, admin_token_file, person)),
        Command::CommitRate { store, tasks, commands, sqlite_normal } => {
            runtime.block_on(commit_rate(store, tasks, commands, sqlite_normal))
        }
        Command::Memory { tokens } => memory(tokens),
        Command::Secrets { count } => runtime.block_on(secrets(count)),
        Command::CatchUp { store } => runtime.block_on(catch_up(store)),
        Command::Replicas { a, b, login_file, count, revocations } => {
            runtime.block_on(replicas(a, b, login_file, count, revocations))
        }
        Command::Guesses { base, admin_token_file, pid, seconds, guessers } => {
            runtime.block_on(guesses(base, admin_token_file, pid, seconds, guessers))
        }
        Command::Logins { base, admin_token_file, seconds, concurrency } => {
            runtime.block_on(logins(base, admin_token_file, seconds, concurrency))
        }
    }
}
