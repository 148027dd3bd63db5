//! The `authledger` command: `serve`, `set-root-password`, and the administrative
//! commands that talk to a running server (`tokens`, `users`).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use authledger::app::import_auth2::{self, ImportError};
use authledger::app::ledger::{Ledger, LedgerOptions};
use authledger::app::root_account::{self, RootOutcome, set_root_password};
use authledger::app::witness::{Accepted, Standing, Witness, accept};
use authledger::cli::client::{self, Client};
use authledger::clock::SystemClock;
use authledger::config::{DEFAULT_LISTEN, DEFAULT_STORE, FileConfig, parse_duration_ms};
use authledger::domain::InvitedIdentity;
use authledger::server::{Server, ServerOptions};
use authledger::store::SecretsKey;

#[derive(Parser)]
#[command(
    name = "authledger",
    version,
    about = "An authentication service whose source of truth is an immutable event log"
)]
struct Cli {
    /// How log lines are written to standard error: `text` for people, `json`
    /// (one object per line, with the request's call id) for log collectors.
    #[arg(long, global = true, env = "AUTHLEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "AUTHLEDGER_LISTEN")]
        listen: Option<String>,
        /// Serve test mode: throw-away test users, tokens and roles in a separate, expiring log.
        #[arg(
            long,
            env = "AUTHLEDGER_TEST_MODE",
            num_args = 0..=1,
            default_missing_value = "true",
            value_parser = BoolishValueParser::new()
        )]
        test_mode: Option<bool>,
        #[command(flatten)]
        common: Common,
    },
    /// Create the root account, or set its password and re-enable it.
    /// Reads the password from standard input when it is not a terminal.
    SetRootPassword {
        #[command(flatten)]
        common: Common,
    },
    /// Provisioning tokens for hosts, on a running server.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Users, on a running server.
    Users {
        #[command(subcommand)]
        action: UsersAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// The key that seals stored secrets (password hashes, TOTP seeds, CA keys).
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Bring a KBase auth2 deployment over from a `mongodump` of its database
    /// into an empty log: users with their anonymous ids, identities, roles and
    /// passwords, live tokens, custom roles and settings. All of it is written
    /// in one transaction, or nothing is.
    ImportAuth2 {
        /// The folder mongodump wrote for auth2's database (`dump/<database>`;
        /// `--gzip` dumps are read too).
        dir: PathBuf,
        /// Read and check everything and say what would come over; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Leave out the documents that do not fit (each is listed) instead of refusing the dump.
        #[arg(long)]
        skip_invalid: bool,
        #[command(flatten)]
        common: Common,
    },
    /// The witness of the log's heads (the signed head kept outside the database).
    Witness {
        #[command(subcommand)]
        action: WitnessAction,
    },
}

#[derive(Subcommand)]
enum WitnessAction {
    /// Accept that the witness file no longer matches the log (missing,
    /// unreadable, or the log behind it) after restoring what can be
    /// restored: records it with the reason, keeps the old file aside and
    /// starts a new one. Servers refusing writes serve again.
    Accept {
        /// Why (recorded in the log; required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum SecretsAction {
    /// Write a new key file (readable by its owner only; never overwrites one),
    /// e.g. for a PostgreSQL store, which has no default key.
    NewKey {
        #[arg(long)]
        file: PathBuf,
    },
    /// Seal the secrets an older version stored in the clear (a server refuses
    /// a store holding any), under the configured key.
    Seal {
        #[command(flatten)]
        common: Common,
    },
    /// Seal every stored secret under a new key, written to a new key file
    /// that also keeps the old key; then point secrets_key_file at it.
    RotateKey {
        /// Where to write the new key file (must not exist).
        #[arg(long)]
        new_key_file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// Issue provisioning tokens; prints them and the command a new host runs to join.
    Add {
        /// Host roles, comma-separated: node, proxy, auth.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// How long the tokens live, e.g. 15m, 2h, 1d.
        #[arg(long, default_value = "30m")]
        ttl: String,
        /// How many tokens (each joins one host).
        #[arg(long, default_value_t = 1)]
        count: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List pending provisioning tokens (never their values) and the static ones.
    Ls {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Delete a provisioning token by id.
    Rm { id: String },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Invite a user: prints the sign-up URL (single use, at most one hour).
    Add {
        name: String,
        /// Logins (SSH certificate principals), comma-separated; default: the user name.
        #[arg(long, value_delimiter = ',')]
        logins: Vec<String>,
        /// An identity to link, connector:email (repeatable).
        #[arg(long = "identity")]
        identities: Vec<String>,
        /// How long the invitation lives (at most 1h).
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Forget a person: every row of the log that names them is rewritten to a
    /// pseudonym, their tokens and secrets go (docs/security.md).
    Forget {
        name: String,
        /// Why (required; kept in the log with the forget: name no one in it).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Args)]
struct Remote {
    /// The server's base URL.
    #[arg(long, env = "AUTHLEDGER_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// A file holding an Admin's token (default: the AUTHLEDGER_ADMIN_TOKEN environment variable).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
}

impl Remote {
    fn client(&self) -> Result<Client, String> {
        let token = match &self.token_file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => std::env::var("AUTHLEDGER_ADMIN_TOKEN")
                .map_err(|_| "set AUTHLEDGER_ADMIN_TOKEN (or --token-file) to an Admin's token".to_owned())?,
        };
        if token.trim().is_empty() {
            return Err("the admin token is empty".into());
        }
        Ok(Client::new(&self.server, &token))
    }
}

fn seconds(ttl: &str) -> Result<i64, String> {
    parse_duration_ms(ttl).map(|ms| ms / 1000).map_err(|e| format!("--ttl: {e}"))
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

#[derive(Args)]
struct Common {
    /// The event store: sqlite://PATH (default sqlite://./authledger-data/events.db) or postgres://...
    #[arg(long, env = "AUTHLEDGER_STORE")]
    store: Option<String>,
    /// A TOML configuration file (optional; every setting has a default).
    #[arg(long, env = "AUTHLEDGER_CONFIG")]
    config: Option<PathBuf>,
    /// The key file sealing stored secrets (default with SQLite: beside the
    /// log, created at first start; required with PostgreSQL).
    #[arg(long, env = "AUTHLEDGER_SECRETS_KEY_FILE")]
    secrets_key_file: Option<PathBuf>,
}

impl Common {
    /// The configuration file and the options it and the flags make: the
    /// ledger's, and the server's around it.
    fn resolve(&self) -> Result<(FileConfig, ServerOptions), String> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path).map_err(|e| e.to_string())?,
            None => FileConfig::default(),
        };
        let store = self.store.clone().or_else(|| file.store.clone()).unwrap_or_else(|| DEFAULT_STORE.to_owned());
        let mut ledger = LedgerOptions::new(store);
        ledger.store.sqlite_full_sync = file.sqlite_full_sync().map_err(|e| e.to_string())?;
        ledger.canonicalization = file.display_name_rule.unwrap_or_default();
        ledger.initial_settings = file.initial_settings().map_err(|e| e.to_string())?;
        ledger.force_reset_ends_sessions = file.forcereset_revokes;
        ledger.listen_for_commits = file.listen_for_commits.unwrap_or(true);
        ledger.password_work = file.password_work().map_err(|e| e.to_string())?;
        if let Some(path) = self.secrets_key_file.clone().or_else(|| file.secrets_key_file.clone()) {
            ledger.store.secrets_key = SecretsKey::File(path);
        }
        let mut options = ServerOptions::new(ledger);
        options.public_url = file.public_url().map_err(|e| e.to_string())?;
        options.ssh = file.ssh_options().map_err(|e| e.to_string())?;
        options.providers = file.provider_settings().map_err(|e| e.to_string())?;
        options.environments = file.environments().map_err(|e| e.to_string())?;
        options.witness_file = file.witness_file.clone();
        options.trusted_proxies = file.trusted_proxies().map_err(|e| e.to_string())?;
        if let Some(every) = file.checkpoint_every {
            if every < 0 {
                return Err(format!("checkpoint_every must be 0 (never) or a number of events, not {every}"));
            }
            options.checkpoint_every = every;
        }
        Ok((file, options))
    }
}

fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New root password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the passwords do not match".into());
        }
        return Ok(first);
    }
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| e.to_string())?;
    let password = input.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&input);
    Ok(password.to_owned())
}

/// What a newcomer does next on a log with no root account: the command,
/// with the same store and configuration as this server.
fn root_hint(common: &Common) -> String {
    let mut command = String::from("authledger set-root-password");
    if let Some(store) = &common.store {
        command.push_str(&format!(" --store {store}"));
    }
    if let Some(config) = &common.config {
        command.push_str(&format!(" --config {}", config.display()));
    }
    if let Some(key) = &common.secrets_key_file {
        command.push_str(&format!(" --secrets-key-file {}", key.display()));
    }
    format!(
        "This log has no root account yet. Create it (the password is read from stdin), then log in as ***ROOT***:\n  \
         {command}"
    )
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { listen, test_mode, common } => {
            let (file, mut options) = common.resolve()?;
            options.test_mode = test_mode.or(file.test_mode_enabled).unwrap_or(false);
            let listen = listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
            let server = Server::start(options, Arc::new(SystemClock), &listen).await.map_err(|e| e.to_string())?;
            tracing::info!(addr = %server.addr, "authledger is serving");
            eprintln!("authledger listening on http://{}", server.addr);
            if !root_account::exists(&server.ledger) {
                eprintln!("{}", root_hint(&common));
            }
            server.run_until_signal().await.map_err(|e| e.to_string())
        }
        Command::SetRootPassword { common } => {
            let (_, options) = common.resolve()?;
            let password = read_password()?;
            let ledger = Ledger::open(options.ledger, Arc::new(SystemClock)).await.map_err(|e| e.to_string())?;
            let outcome = set_root_password(&ledger, password).await.map_err(|e| e.to_string());
            ledger.close().await;
            match outcome? {
                RootOutcome::Created => eprintln!("created the root account (***ROOT***)"),
                RootOutcome::PasswordReset => {
                    eprintln!("set the root account's password and enabled it")
                }
            }
            Ok(())
        }
        Command::Tokens { action, remote } => {
            let client = remote.client()?;
            match action {
                TokensAction::Add { roles, ttl, count, format } => {
                    let answer = client.add_tokens(&roles, seconds(&ttl)?, count).await.map_err(|e| e.to_string())?;
                    match format {
                        Format::Json => {
                            let values: Vec<&str> = answer.tokens.iter().map(|t| t.token.as_str()).collect();
                            print_json(&values);
                        }
                        Format::Text => print!("{}", client::tokens_added_text(client.server(), &answer, &ttl)),
                    }
                }
                TokensAction::Ls { format } => {
                    let answer = client.list_tokens().await.map_err(|e| e.to_string())?;
                    match format {
                        Format::Json => print_json(&answer),
                        Format::Text => print!("{}", client::tokens_listed_text(&answer)),
                    }
                }
                TokensAction::Rm { id } => {
                    client.remove_token(&id).await.map_err(|e| e.to_string())?;
                    println!("deleted provisioning token {id}");
                }
            }
            Ok(())
        }
        Command::Witness { action: WitnessAction::Accept { reason, common } } => {
            let (_, options) = common.resolve()?;
            let file =
                authledger::store::witness::witness_path(&options.ledger.store_url, options.witness_file.as_deref());
            let ledger = Ledger::open(options.ledger, Arc::new(SystemClock)).await.map_err(|e| e.to_string())?;
            let accepted = async {
                let witness = Witness::open(&ledger, file).await?;
                accept(&ledger, &witness, &reason).await
            }
            .await;
            ledger.close().await;
            match accepted.map_err(|e| e.to_string())? {
                Accepted::Nothing(standing) => eprintln!(
                    "nothing to accept: {}",
                    match standing {
                        Standing::NotKept => "no witness file is kept (set witness_file)",
                        Standing::Fresh =>
                            "the log was never witnessed; a witness file starts with the next signed head",
                        _ => "the witness holds the log",
                    }
                ),
                Accepted::Reset { found, aside, head } => {
                    eprintln!("recorded the reset (WitnessReset): {found}");
                    if let Some(aside) = aside {
                        eprintln!("the old witness file is kept as {}", aside.display());
                    }
                    if let Some(head) = head {
                        eprintln!(
                            "a new witness file holds the head at position {} (chain {})",
                            head.position, head.chain
                        );
                    }
                }
            }
            Ok(())
        }
        Command::ImportAuth2 { dir, dry_run, skip_invalid, common } => {
            let (_, options) = common.resolve()?;
            let clock: authledger::clock::SharedClock = Arc::new(SystemClock);
            let dump = import_auth2::Dump::open(&dir).map_err(|e| e.to_string())?;
            let plan = match import_auth2::plan(&dump, clock.now_ms(), skip_invalid) {
                Err(ImportError::Refused(refused)) => {
                    eprint!("{}", import_auth2::describe_refused(&refused));
                    return Err(ImportError::Refused(refused).to_string());
                }
                planned => planned.map_err(|e| e.to_string())?,
            };
            if dry_run {
                print!("{}", import_auth2::describe(&plan.report, true));
                return Ok(());
            }
            let bar = authledger::cli::progress::bar(plan.report.events as u64, "importing");
            let imported = import_auth2::import_into(&options.ledger, plan, clock, |n| bar.set_position(n)).await;
            bar.finish_and_clear();
            print!("{}", import_auth2::describe(&imported.map_err(|e| e.to_string())?, false));
            Ok(())
        }
        Command::Secrets { action: SecretsAction::NewKey { file } } => {
            let id = authledger::app::secrets::new_key(&file).map_err(|e| e.to_string())?;
            eprintln!(
                "wrote key {id} to {}: set secrets_key_file to it, and back it up apart from the database",
                file.display()
            );
            Ok(())
        }
        Command::Secrets { action: SecretsAction::Seal { common } } => {
            let (_, options) = common.resolve()?;
            let sealed = authledger::app::secrets::seal(&options.ledger).await.map_err(|e| e.to_string())?;
            eprintln!("sealed {sealed} secrets that were stored in the clear");
            Ok(())
        }
        Command::Secrets { action: SecretsAction::RotateKey { new_key_file, common } } => {
            let (_, options) = common.resolve()?;
            let rotated = authledger::app::secrets::rotate_key(&options.ledger, &new_key_file)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "sealed {} secrets under key {} in {} (which also keeps key {} to open anything sealed meanwhile).\n\
                 Set secrets_key_file to {} (or move it over the old file: running servers re-read their key file \
                 when they meet a key they do not hold) and restart the servers; each seals any leftover under the new key at start.",
                rotated.resealed,
                rotated.key,
                new_key_file.display(),
                rotated.kept.join(", "),
                new_key_file.display()
            );
            Ok(())
        }
        Command::Users { action: UsersAction::Forget { name, reason }, remote } => {
            remote.client()?.forget_user(&name, &reason).await.map_err(|e| e.to_string())?;
            println!("Forgot {name}: the log names them no more.");
            Ok(())
        }
        Command::Users { action: UsersAction::Add { name, logins, identities, ttl, format }, remote } => {
            for identity in &identities {
                InvitedIdentity::parse(identity).map_err(|_| {
                    format!("--identity {identity:?}: expected connector:email, e.g. github:alice@example.org")
                })?;
            }
            let client = remote.client()?;
            let answer = client.invite(&name, &logins, &identities, seconds(&ttl)?).await.map_err(|e| e.to_string())?;
            match format {
                Format::Json => print_json(&answer),
                Format::Text => print!("{}", client::invited_text(&answer)),
            }
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // JSON lines carry each request's span (its method, path and call id).
    let default_filter = match cli.log_format {
        LogFormat::Text => "info,sqlx=warn,tower_http=info",
        LogFormat::Json => "info,sqlx=warn,tower_http=info,authledger::request=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    // Colour only for a person at a terminal: a log file gets no escape codes.
    let colour = std::io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("authledger: {message}");
            ExitCode::FAILURE
        }
    }
}
