//! Measurement tool behind `bench/run.sh` (not a timed test). Subcommands:
//!
//! - `seed`: a user and N live tokens, appended as real `TokenIssued` events
//!   through the store (the bulk path), plus a Login token for HTTP load;
//!   writes token values to files for wrk.
//! - `commit-rate`: one-event commands (token issues) through the command bus
//!   and the store, from T tasks: the raw commit rate.
//! - `memory`: bytes the token index holds per live token (counted by the
//!   allocator) and the process's resident-memory growth per token.
//! - `catch-up`: how long folding the whole log into the projections takes.
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
use authledger::projections::{Fold, Projections, ReadModel, Runner, hash_token};
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

async fn seed(store: String, tokens: usize, tokens_out: String, sample: usize, login_out: String, admin: bool) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut options = LedgerOptions::new(store.clone());
    options.store.sqlite_full_sync = false;
    let ledger = Ledger::open(options, clock.clone()).await.expect("open");
    let user = UserName::parse(Some("bench")).expect("name");
    let meta = EventMetadata::actor("bench");
    if ledger.model.read().users.get(&user).is_none() {
        let create = UserCommand::Create {
            user: user.clone(),
            display: DisplayName::parse(Some("Bench User")).expect("display"),
            email: None,
            anon_id: Uuid::new_v4(),
            created: clock.now_ms(),
            by: UserName::root(),
            password: None,
        };
        ledger.execute::<User>(&user, create, &meta).await.expect("user");
    }
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
        let user = user.clone();
        let keep = sample.div_ceil(workers);
        handles.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..per_worker {
                let n = w * per_worker + i;
                if n >= tokens {
                    break;
                }
                let token = new_token();
                let event = TokenEvent::TokenIssued(grant(&user, &token, TokenKind::Agent, n, now));
                log.append(vec![serialized(Uuid::new_v4(), event)]).await.expect("append");
                if kept.len() < keep {
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
    let model = Arc::new(ReadModel::new(Projections::new(Canonicalization::default())));
    let runner = Runner::new(log.clone(), model.clone());
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

fn main() {
    // `cargo bench` passes `--bench`; drop it.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let cli = Cli::parse_from(args);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match cli.command {
        Command::Seed { store, tokens, tokens_out, sample, login_out, admin } => {
            runtime.block_on(seed(store, tokens, tokens_out, sample, login_out, admin))
        }
        Command::CommitRate { store, tasks, commands, sqlite_normal } => {
            runtime.block_on(commit_rate(store, tasks, commands, sqlite_normal))
        }
        Command::Memory { tokens } => memory(tokens),
        Command::CatchUp { store } => runtime.block_on(catch_up(store)),
    }
}
