//! The `authledger` command: `serve`, and `set-root-password`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use authledger::clock::SystemClock;
use authledger::config::{DEFAULT_LISTEN, DEFAULT_STORE, FileConfig};
use authledger::ledger::{Ledger, LedgerOptions};
use authledger::root_account::{RootOutcome, set_root_password};
use authledger::server::Server;

#[derive(Parser)]
#[command(
    name = "authledger",
    version,
    about = "An authentication service whose source of truth is an immutable event log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

#[derive(Args)]
struct Common {
    /// The event store: sqlite://PATH (default sqlite://./authledger-data/events.db) or postgres://...
    #[arg(long, env = "AUTHLEDGER_STORE")]
    store: Option<String>,
    /// A TOML configuration file (optional; every setting has a default).
    #[arg(long, env = "AUTHLEDGER_CONFIG")]
    config: Option<PathBuf>,
}

impl Common {
    fn resolve(&self) -> Result<(FileConfig, LedgerOptions), String> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path).map_err(|e| e.to_string())?,
            None => FileConfig::default(),
        };
        let store = self.store.clone().or_else(|| file.store.clone()).unwrap_or_else(|| DEFAULT_STORE.to_owned());
        let mut options = LedgerOptions::new(store);
        options.store.sqlite_full_sync = file.sqlite_full_sync().map_err(|e| e.to_string())?;
        options.canonicalization = file.display_name_rule.unwrap_or_default();
        options.initial_settings = file.initial_settings().map_err(|e| e.to_string())?;
        options.access = file.access_options().map_err(|e| e.to_string())?;
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

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { listen, test_mode, common } => {
            let (file, mut options) = common.resolve()?;
            options.test_mode = test_mode.or(file.test_mode_enabled).unwrap_or(false);
            let listen = listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
            let server = Server::start(options, Arc::new(SystemClock), &listen).await.map_err(|e| e.to_string())?;
            tracing::info!(addr = %server.addr, "authledger is serving");
            eprintln!("authledger listening on http://{}", server.addr);
            server.run_until_signal().await.map_err(|e| e.to_string())
        }
        Command::SetRootPassword { common } => {
            let (_, options) = common.resolve()?;
            let password = read_password()?;
            let ledger = Ledger::open(options, Arc::new(SystemClock)).await.map_err(|e| e.to_string())?;
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
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("authledger: {message}");
            ExitCode::FAILURE
        }
    }
}
