//! The `replay` command. Readable tables by default, `--format json` for
//! machines; a progress bar on a terminal, silence when piped.

use std::process::ExitCode;

use authledger::cli::progress::{bar as progress, spinner};
use authledger::config::DEFAULT_STORE;
use authledger::domain::UserName;
use authledger::domain::canonical::Canonicalization;
use authledger::store::StoreOptions;
use clap::{Parser, Subcommand, ValueEnum};
use replay::{Entry, Query, Subject};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "replay", version, about = "Read an authledger event log: history, verification, export and import")]
struct Cli {
    /// The event store: sqlite://PATH or postgres://...
    #[arg(long, env = "AUTHLEDGER_STORE", global = true, default_value = DEFAULT_STORE)]
    store: String,
    /// Output format.
    #[arg(long, value_enum, global = true, default_value_t = Format::Table)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProjectionName {
    All,
    TokenIndex,
    UserDirectory,
    Settings,
    Access,
}

#[derive(Subcommand)]
enum Command {
    /// Every event touching a user, a token, or everything, in commit order.
    History {
        #[arg(long, group = "subject")]
        user: Option<String>,
        /// A token id (not the token itself).
        #[arg(long, group = "subject")]
        token: Option<Uuid>,
        #[arg(long, group = "subject")]
        all: bool,
        /// Only events recorded at or after this time (RFC 3339, or epoch milliseconds).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Only events recorded at or before this time (RFC 3339, or epoch milliseconds).
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
    },
    /// A user's state at a moment (profile, roles, disabled, live tokens, SSH logins and certificates), or whether a token was valid then and why not.
    AsOf {
        /// The moment (RFC 3339, or epoch milliseconds).
        #[arg(value_parser = parse_time)]
        at: i64,
        #[arg(long, group = "subject", required = true)]
        user: Option<String>,
        /// A token id (not the token itself).
        #[arg(long, group = "subject", required = true)]
        token: Option<Uuid>,
    },
    /// Check the integrity chain over the whole log (naming the first bad position), then
    /// rebuild every projection up to the newest checkpoint and compare digests.
    Verify {
        /// The display-name rule whose checkpoint to compare with.
        #[arg(long, value_parser = parse_rule, default_value = "0.6.0")]
        display_name_rule: Canonicalization,
        /// Also compare with the live projections of the server at this URL (an Admin's
        /// token in AUTHLEDGER_ADMIN_TOKEN), rebuilt up to the position the server reports.
        #[arg(long)]
        server: Option<String>,
        /// The witness file whose signed head the log must still hold (default: the
        /// one beside an SQLite log, when it exists).
        #[arg(long)]
        witness: Option<std::path::PathBuf>,
        /// The witness's public key (base64, from GET /api/V2/admin/head) the signed head must be under.
        #[arg(long)]
        witness_key: Option<String>,
        /// A head an auditor pinned earlier, POSITION:CHAIN (from an earlier verify or GET /api/V2/admin/head).
        #[arg(long, value_parser = replay::parse_head)]
        head: Option<(i64, String)>,
    },
    /// Rebuild every projection from the log and store a checkpoint, which the
    /// server loads at start-up instead of folding the whole log.
    Rebuild {
        /// The display-name rule to fold the user directory with (the server's `display_name_rule`).
        #[arg(long, value_parser = parse_rule, default_value = "0.6.0")]
        display_name_rule: Canonicalization,
        /// Rebuild only this projection; the others are carried forward from the newest checkpoint.
        #[arg(long, value_enum, default_value_t = ProjectionName::All)]
        projection: ProjectionName,
    },
    /// Write the whole log (and the password-hash table) as JSON lines.
    Export { file: String },
    /// Load an export into an empty store (its chain is verified first).
    Import { file: String },
}

fn parse_rule(text: &str) -> Result<Canonicalization, String> {
    match text {
        "0.6.0" => Ok(Canonicalization::V2),
        "pre-0.6.0" => Ok(Canonicalization::V1),
        other => Err(format!("{other:?} is not \"0.6.0\" or \"pre-0.6.0\"")),
    }
}

fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| format!("{text:?} is neither RFC 3339 nor epoch milliseconds: {e}"))
}

fn rfc3339(ms: i64) -> String {
    authledger::domain::describe::timestamp(ms)
}

fn print_history(entries: &[Entry], format: Format) {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(entries).unwrap_or_default());
        return;
    }
    let dash = || "-".to_owned();
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                e.position.to_string(),
                rfc3339(e.recorded_at),
                e.actor.clone().unwrap_or_else(dash),
                e.client_addr.clone().unwrap_or_else(dash),
                e.reason.clone().unwrap_or_else(dash),
                format!("{}: {}", e.event_type, e.description),
            ]
        })
        .collect();
    let header = ["POSITION", "RECORDED", "ACTOR", "FROM", "REASON", "EVENT"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (i, width) in widths.iter_mut().enumerate() {
            *width = (*width).max(row[i].chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, width) in widths.iter().enumerate() {
            line.push_str(&format!("{:<width$}  ", row[i]));
        }
        line.push_str(&row[5]);
        println!("{line}");
    }
    // User agents are long: listed after the table, by position.
    let agents: Vec<&Entry> = entries.iter().filter(|e| e.user_agent.is_some()).collect();
    if !agents.is_empty() {
        println!("\nUser agents:");
        for e in agents {
            println!("  {}: {}", e.position, e.user_agent.as_deref().unwrap_or_default());
        }
    }
}

/// A token as one line: id, kind, name, creation and expiry.
fn token_line(t: &serde_json::Value) -> String {
    let name = t["name"].as_str().map(|n| format!(" \"{n}\"")).unwrap_or_default();
    format!(
        "\n    {} {}{name}, created {}, expires {}",
        t["id"].as_str().unwrap_or_default(),
        t["kind"].as_str().unwrap_or_default(),
        rfc3339(t["created"].as_i64().unwrap_or_default()),
        rfc3339(t["expires"].as_i64().unwrap_or_default())
    )
}

/// An SSH certificate as one line: serial, principals, validity and the certified key.
fn certificate_line(c: &serde_json::Value) -> String {
    let principals = c["principals"]
        .as_array()
        .map_or_else(String::new, |p| p.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(", "));
    format!(
        "\n    {} for {principals}, valid {} to {}, key {}",
        c["serial"].as_str().unwrap_or_default(),
        rfc3339(c["valid_after"].as_i64().unwrap_or_default()),
        rfc3339(c["valid_before"].as_i64().unwrap_or_default()),
        c["key_fingerprint"].as_str().unwrap_or_default()
    )
}

/// A JSON object as aligned `key: value` lines; times in epoch ms shown with their RFC 3339 form.
fn print_fields(value: &serde_json::Value) {
    let Some(object) = value.as_object() else {
        println!("{value}");
        return;
    };
    let width = object.keys().map(String::len).max().unwrap_or(0);
    for (key, field) in object {
        let shown = match field {
            serde_json::Value::Number(n) if matches!(key.as_str(), "at" | "created" | "expires") => {
                format!("{} ({n})", rfc3339(n.as_i64().unwrap_or_default()))
            }
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            serde_json::Value::Array(items) if items.is_empty() => "-".into(),
            serde_json::Value::Array(tokens) if key == "tokens" => tokens.iter().map(token_line).collect(),
            serde_json::Value::Object(_) if key == "token" => token_line(field),
            serde_json::Value::Array(certificates) if key == "certificates" => {
                certificates.iter().map(certificate_line).collect()
            }
            serde_json::Value::Array(items) if items.iter().all(|i| !i.is_object()) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", "),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        };
        println!("{key:<width$}  {shown}");
    }
}

/// The live server's projections (`GET /api/V2/admin/digest`) against a rebuild up to their position.
async fn live_check(log: &authledger::store::EventLog, url: &str) -> Result<replay::CheckpointCheck, String> {
    let token = std::env::var("AUTHLEDGER_ADMIN_TOKEN")
        .map_err(|_| "--server needs an Admin's token in AUTHLEDGER_ADMIN_TOKEN".to_owned())?;
    let answer = reqwest::Client::new()
        .get(format!("{}/api/V2/admin/digest", url.trim_end_matches('/')))
        .header("Authorization", token)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = answer.status();
    let served: serde_json::Value = answer.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {}", served["error"]["message"]));
    }
    let position = served["position"].as_i64().ok_or("the server sent no position")?;
    let rule = parse_rule(served["rule"].as_str().unwrap_or_default())?;
    let rebuilt = replay::digest_at(log, rule, position).await.map_err(|e| e.to_string())?;
    Ok(replay::CheckpointCheck { position, stored: served["digest"].as_str().unwrap_or_default().to_owned(), rebuilt })
}

async fn run(cli: Cli) -> Result<bool, String> {
    fn fail(e: impl std::fmt::Display) -> String {
        e.to_string()
    }
    match cli.command {
        Command::History { user, token, all, since, until } => {
            let subject = match (user, token, all) {
                (Some(user), _, _) => Subject::User(UserName::parse(Some(&user)).map_err(|e| e.to_string())?),
                (_, Some(token), _) => Subject::Token(token),
                (_, _, true) => Subject::All,
                _ => return Err("say whose history: --user U, --token TOKEN_ID or --all".into()),
            };
            let store = replay::open(&cli.store, replay::read_only()).await.map_err(fail)?;
            let log = &store.log;
            let bar = progress(log.head().await.map_err(|e| e.to_string())? as u64, "reading");
            let entries = replay::history(log, &Query { subject, since, until, actor: None, event_type: None }, |p| {
                bar.set_position(p as u64)
            })
            .await
            .map_err(fail)?;
            bar.finish_and_clear();
            print_history(&entries, cli.format);
            Ok(true)
        }
        Command::AsOf { at, user, token } => {
            let store = replay::open(&cli.store, replay::read_only()).await.map_err(fail)?;
            let log = &store.log;
            let json = match (user, token) {
                (Some(user), _) => {
                    let name = UserName::parse(Some(&user)).map_err(|e| e.to_string())?;
                    match replay::user_as_of(log, &name, at).await.map_err(fail)? {
                        Some(state) => serde_json::to_value(&state).unwrap_or_default(),
                        None => return Err(format!("there was no user {user} at {}", rfc3339(at))),
                    }
                }
                (_, Some(token)) => {
                    serde_json::to_value(replay::token_as_of(log, token, at).await.map_err(fail)?).unwrap_or_default()
                }
                _ => return Err("say whose state: --user U or --token TOKEN_ID".into()),
            };
            match cli.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default()),
                Format::Table => print_fields(&json),
            }
            Ok(true)
        }
        Command::Rebuild { display_name_rule, projection } => {
            let part = match projection {
                ProjectionName::All => replay::Part::All,
                ProjectionName::TokenIndex => replay::Part::TokenIndex,
                ProjectionName::UserDirectory => replay::Part::UserDirectory,
                ProjectionName::Settings => replay::Part::Settings,
                ProjectionName::Access => replay::Part::Access,
            };
            let store = replay::open(&cli.store, StoreOptions::default()).await.map_err(fail)?;
            let log = &store.log;
            let started = std::time::Instant::now();
            let bar = spinner("rebuilding from the log");
            let built = replay::rebuild_part(&store, display_name_rule, part).await.map_err(fail);
            bar.finish_and_clear();
            log.close().await;
            let built = built?;
            let seconds = started.elapsed().as_secs_f64();
            match cli.format {
                Format::Json => {
                    let mut report = serde_json::to_value(&built).unwrap_or_default();
                    report["seconds"] = seconds.into();
                    println!("{report}");
                }
                Format::Table => println!(
                    "checkpoint at position {} ({} rule): digest {}, {} bytes, rebuilt in {seconds:.2} s{}",
                    built.position,
                    display_name_rule.name(),
                    built.digest,
                    built.bytes,
                    if built.carried_forward {
                        " (other projections carried forward from the last checkpoint)"
                    } else {
                        ""
                    }
                ),
            }
            Ok(true)
        }
        Command::Verify { display_name_rule, server, witness, witness_key, head: pinned } => {
            let store = replay::open(&cli.store, replay::read_only()).await.map_err(fail)?;
            let log = &store.log;
            let head = log.head().await.map_err(|e| e.to_string())?;
            let bar = progress(head as u64, "verifying");
            let outcome = replay::verify_chain(log, witness_key.as_deref(), |p| bar.set_position(p as u64))
                .await
                .map_err(fail)?;
            bar.finish_and_clear();
            let check = match &outcome {
                Ok(_) => replay::verify_checkpoint(&store, display_name_rule).await.map_err(fail)?,
                Err(_) => None,
            };
            let live = match (&server, &outcome) {
                (Some(url), Ok(_)) => Some(live_check(log, url).await?),
                _ => None,
            };
            let witness = witness
                .or_else(|| authledger::store::witness::witness_path(&cli.store, None).filter(|path| path.exists()));
            let heads =
                replay::check_heads(log, witness.as_deref(), witness_key.as_deref(), pinned).await.map_err(fail)?;
            let ok = outcome.is_ok()
                && check.as_ref().is_none_or(|c| c.matches())
                && live.as_ref().is_none_or(|c| c.matches())
                && heads.iter().all(replay::HeadReport::holds);
            match cli.format {
                Format::Json => {
                    let mut report = match &outcome {
                        Ok(v) => serde_json::json!({
                            "chain": "intact",
                            "events": v.checked(),
                            "head_chain": authledger::store::chain::encode(&v.head()),
                            "rewritten": v.rewritten(),
                            "forgets": v.forgets(),
                        }),
                        Err(broken) => serde_json::json!({
                            "chain": "broken", "position": broken.position(), "problem": broken.to_string(),
                        }),
                    };
                    report["checkpoint"] = serde_json::to_value(&check).unwrap_or_default();
                    report["projections"] = match &check {
                        Some(c) if c.matches() => "match".into(),
                        Some(_) => "differ".into(),
                        None => serde_json::Value::Null,
                    };
                    report["server"] = serde_json::to_value(&live).unwrap_or_default();
                    report["heads"] = serde_json::to_value(&heads).unwrap_or_default();
                    println!("{report}");
                }
                Format::Table => {
                    match &outcome {
                        Ok(v) => println!(
                            "chain intact: {} events; head chain {} (keep it: a log rewritten from some row to its head would change it)",
                            v.checked(),
                            authledger::store::chain::encode(&v.head())
                        ),
                        Err(broken) => println!("chain BROKEN at position {}: {broken}", broken.position()),
                    }
                    if let Ok(v) = &outcome
                        && v.forgets() > 0
                    {
                        println!(
                            "{} rows were rewritten by {} forgets, each row checked against its forget's signed commitment",
                            v.rewritten(),
                            v.forgets()
                        );
                    }
                    match &check {
                        None if outcome.is_ok() => {
                            println!("no checkpoint to compare projections with (see `replay rebuild`)")
                        }
                        None => {}
                        Some(c) if c.matches() => println!(
                            "projections rebuilt from scratch match the checkpoint at position {} (digest {})",
                            c.position, c.rebuilt
                        ),
                        Some(c) => println!(
                            "projections DIFFER from the checkpoint at position {}: stored {}, rebuilt {}",
                            c.position, c.stored, c.rebuilt
                        ),
                    }
                    match &live {
                        Some(c) if c.matches() => println!(
                            "projections rebuilt from scratch match the live server's at position {} (digest {})",
                            c.position, c.rebuilt
                        ),
                        Some(c) => println!(
                            "projections DIFFER from the live server's at position {}: served {}, rebuilt {}",
                            c.position, c.stored, c.rebuilt
                        ),
                        None => {}
                    }
                    if heads.is_empty() {
                        println!("no signed head to check the log's end against (--witness, --head)");
                    }
                    for report in &heads {
                        match &report.signature {
                            Some(problem) => println!("{}: signature NOT VALID: {problem}", report.source),
                            None => println!("{}: {}", report.source, report.check),
                        }
                        if report.pinned == Some(false) {
                            println!(
                                "  (checked under the key the file names; pin the witness's key with --witness-key, from GET /api/V2/admin/head)"
                            );
                        }
                    }
                }
            }
            Ok(ok)
        }
        Command::Export { file } => {
            let store = replay::open(&cli.store, replay::read_only()).await.map_err(fail)?;
            let log = &store.log;
            let bar = progress(log.head().await.map_err(|e| e.to_string())? as u64, "exporting");
            let out = std::fs::File::create(&file).map_err(|e| format!("{file}: {e}"))?;
            let mut out = std::io::BufWriter::new(out);
            let moved = replay::export(&store, &mut out, |p| bar.set_position(p as u64)).await.map_err(fail)?;
            bar.finish_and_clear();
            eprintln!("exported {} events and {} secrets to {file}", moved.events, moved.secrets);
            for needed in [moved.key_needed(), moved.witness_needed()].into_iter().flatten() {
                eprintln!("{needed}");
            }
            Ok(true)
        }
        Command::Import { file } => {
            let store = replay::open(&cli.store, StoreOptions::default()).await.map_err(fail)?;
            let log = &store.log;
            let bar = spinner("verifying and importing");
            let moved = replay::import(&file, &store).await.map_err(fail);
            bar.finish_and_clear();
            log.close().await;
            let moved = moved?;
            eprintln!("imported {} events and {} secrets from {file}", moved.events, moved.secrets);
            for needed in [moved.key_needed(), moved.witness_needed()].into_iter().flatten() {
                eprintln!("{needed}");
            }
            Ok(true)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("replay: {message}");
            ExitCode::from(2)
        }
    }
}
