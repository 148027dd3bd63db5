//! What operators ask a running server: is it alive, is it ready to serve
//! (its store answers and its projections hold everything the log held when
//! it started), and its metrics (`crate::telemetry`), whose gauges are read
//! here at scrape time.

use std::time::Duration;

use serde::Serialize;

use super::duties::Duties;
use super::ledger::Ledger;
use super::provider_flows::ProviderFlows;
use super::test_mode::TestLedger;
use crate::telemetry;

/// How long a readiness or metrics probe waits for the store.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How far behind the log's head the projections may be and still serve
/// (a runner stuck on an event it cannot fold falls further behind).
pub const MAX_READY_LAG: i64 = 10_000;

/// A server's readiness.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// The position the projections hold.
    pub position: i64,
    /// The log's head now (`None`: the store did not answer in time).
    pub head: Option<i64>,
    /// The log's head when the server started: what it must hold to be ready.
    pub started_at_head: i64,
    /// Why writes are refused, while they are (the witness does not hold the
    /// log: an operator acts — see `authledger witness accept`).
    pub refused: Option<String>,
}

/// Whether the store answers within [`PROBE_TIMEOUT`], the projections hold
/// the head the log had when this server started, they are at most
/// [`MAX_READY_LAG`] events behind its head now, and writes are not refused.
pub async fn readiness(ledger: &Ledger) -> Readiness {
    let head = match tokio::time::timeout(PROBE_TIMEOUT, ledger.log.head()).await {
        Ok(Ok(head)) => Some(head),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            None
        }
        Err(_) => {
            tracing::warn!("not ready: the store did not answer in time");
            None
        }
    };
    let position = ledger.projections.position();
    let started_at_head = ledger.started_at_head();
    let refused = ledger.writes_refused();
    let ready =
        refused.is_none() && head.is_some_and(|head| position >= started_at_head && head - position <= MAX_READY_LAG);
    Readiness { ready, position, head, started_at_head, refused }
}

/// The metrics, with the gauges read now: the log's head, the projections'
/// positions and lag, the token index's and directory's sizes, the flows
/// under way and whether this server holds the duty lease.
pub async fn metrics(
    ledger: &Ledger,
    flows: &ProviderFlows,
    duties: &Duties,
    test_mode: Option<&TestLedger>,
) -> String {
    let position = ledger.projections.position();
    let (tokens, users) = {
        let projections = ledger.projections.read();
        (projections.tokens.len(), projections.users.len())
    };
    for projection in ["tokens", "users", "config", "access"] {
        metrics::gauge!(telemetry::PROJECTION_POSITION, "projection" => projection).set(position as f64);
    }
    if let Some(test_mode) = test_mode {
        metrics::gauge!(telemetry::PROJECTION_POSITION, "projection" => "testmode")
            .set(test_mode.projections.position() as f64);
    }
    if let Ok(Ok(head)) = tokio::time::timeout(PROBE_TIMEOUT, ledger.log.head()).await {
        metrics::gauge!(telemetry::LOG_HEAD).set(head as f64);
        metrics::gauge!(telemetry::PROJECTION_LAG).set((head - position).max(0) as f64);
    }
    metrics::gauge!(telemetry::TOKEN_INDEX_SIZE).set(tokens as f64);
    metrics::gauge!(telemetry::USERS).set(users as f64);
    if let Ok(Ok(states)) = tokio::time::timeout(PROBE_TIMEOUT, flows.count()).await {
        metrics::gauge!(telemetry::LOGIN_STATES).set(states as f64);
    }
    metrics::gauge!(telemetry::DUTY_LEASE).set(if duties.leading() { 1.0 } else { 0.0 });
    metrics::gauge!(telemetry::PASSWORD_CHECKS_RUNNING).set(ledger.password_work.running() as f64);
    metrics::gauge!(telemetry::PASSWORD_CHECKS_WAITING).set(ledger.password_work.waiting() as f64);
    metrics::gauge!(telemetry::PASSWORD_CHECKS_PEAK).set(ledger.password_work.most_at_once() as f64);
    telemetry::render()
}
