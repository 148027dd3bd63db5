//! Metrics in Prometheus text format: one recorder per process (the
//! `metrics` facade, rendered by `metrics-exporter-prometheus`), the names of
//! every metric the service records, and their histogram buckets. Labels
//! name routes, aggregate types, outcomes and sweeps — never a token, a user
//! name or any other identifier a request brings.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` (the route's template, or
/// `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "authledger_http_requests_total";
/// Their latency, by the same labels.
pub const HTTP_DURATION: &str = "authledger_http_request_duration_seconds";
/// Commands run, by `aggregate` type and `outcome` (`committed`,
/// `unchanged`: nothing needed recording, `rejected`: a rule refused it,
/// `busy`: contention outlasted its deadline, `failed`: the log failed).
pub const COMMANDS: &str = "authledger_commands_total";
/// Optimistic-lock conflicts (another process wrote first; retried), by `aggregate` type.
pub const CONFLICTS: &str = "authledger_command_conflicts_total";
/// Commands per append batch (the group commit), by `log` (`main`, `testmode`).
pub const APPEND_BATCH: &str = "authledger_append_batch_commands";
/// How long an append batch took to commit, by `log`.
pub const APPEND_DURATION: &str = "authledger_append_commit_seconds";
/// The position of the newest event in the log (read at scrape time).
pub const LOG_HEAD: &str = "authledger_log_head";
/// The position the projections have folded, by `projection`.
pub const PROJECTION_POSITION: &str = "authledger_projection_position";
/// How many events the projections are behind the head.
pub const PROJECTION_LAG: &str = "authledger_projection_lag_events";
/// Tokens in the token index (live and not yet swept).
pub const TOKEN_INDEX_SIZE: &str = "authledger_token_index_size";
/// Users in the user directory.
pub const USERS: &str = "authledger_users";
/// Flows (provider logins and links) under way (the in-flight store).
pub const LOGIN_STATES: &str = "authledger_login_states_in_flight";
/// Provider logins under way dropped to make room for newer ones, by the `bound`
/// that made room (`client`, `network`, `user`, `fullest network`).
pub const SIGNINS_EVICTED: &str = "authledger_signins_evicted_total";
/// Sweeps run, by `sweep` (`signins`, `secrets`, `testmode`).
pub const SWEEPS: &str = "authledger_sweeps_total";
/// Rows a sweep removed, by `sweep`.
pub const SWEPT: &str = "authledger_swept_total";
/// Commits by any server heard through the database (PostgreSQL's NOTIFY).
pub const COMMITS_HEARD: &str = "authledger_commit_notifications_total";
/// Queries of the log's head made to catch up before answering a miss.
pub const HEAD_CHECKS: &str = "authledger_head_checks_total";
/// 1 when this server holds the duty lease, 0 otherwise.
pub const DUTY_LEASE: &str = "authledger_duty_lease_held";
/// argon2 runs (password checks and hashes) started.
pub const PASSWORD_CHECKS: &str = "authledger_password_checks_total";
/// argon2 runs running now (read at scrape time).
pub const PASSWORD_CHECKS_RUNNING: &str = "authledger_password_checks_running";
/// The most argon2 runs that went at once since the server started (read at scrape time).
pub const PASSWORD_CHECKS_PEAK: &str = "authledger_password_checks_running_peak";
/// Requests waiting for an argon2 run now (read at scrape time).
pub const PASSWORD_CHECKS_WAITING: &str = "authledger_password_checks_waiting";
/// Requests answered busy instead of waiting for a run, by `reason` (`queue full`, `deadline`).
pub const PASSWORD_CHECKS_REFUSED: &str = "authledger_password_checks_refused_total";
/// Password checks refused by a throttle before any run, by `count` (`client`, `account`, `address`).
pub const PASSWORD_THROTTLED: &str = "authledger_password_checks_throttled_total";
/// Checkpoints of the projections this server wrote.
pub const CHECKPOINTS: &str = "authledger_checkpoints_written_total";

/// Latency buckets, in seconds: half a millisecond to ten seconds.
const SECONDS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Batch-size buckets.
const COUNTS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; every server of a process shares
/// it). `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(APPEND_BATCH.into()), &COUNTS));
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => Some(handle),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "metrics are not recorded: cannot install the recorder");
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are not recorded: bad buckets");
                    None
                }
            }
        })
        .as_ref()
}

/// Everything recorded so far, in Prometheus text format.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}
