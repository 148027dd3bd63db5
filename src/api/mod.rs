//! The HTTP API (axum): the auth2-compatible routes, the error envelope, the
//! caller checks and the permission table. The only module where HTTP exists.

pub mod admin;
pub mod auditor;
pub mod caller;
pub mod consistency;
pub mod error;
pub mod guard;
pub mod invites;
pub mod legacy;
pub mod link;
pub mod local_account;
pub mod login;
pub mod me;
pub mod middleware;
pub mod openapi;
pub mod operations;
pub mod pages;
pub mod permissions;
pub mod provisioning;
pub mod request;
pub mod root;
pub mod ssh;
pub mod test_mode;
pub mod tokens;
pub mod v2;
pub mod views;

use std::sync::Arc;

use axum::Router;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::ledger::Ledger;
use crate::app::ssh::SshService;
use crate::app::test_mode::TestLedger;
pub use caller::{Caller, require_login};
use openapi::Access;

/// What every handler shares: one pointer, so the clones axum makes of the
/// state for each request (several per request, one per extractor and layer)
/// touch one reference count rather than one per service. Fields are read
/// through `Deref`, as `state.ledger`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The services and settings behind [`AppState`].
pub struct Shared {
    pub ledger: Arc<Ledger>,
    /// The test-mode log, when test mode is on.
    pub test_mode: Option<Arc<TestLedger>>,
    pub info: Arc<ServiceInfo>,
    /// The service's public base URL (no trailing slash): the origin of
    /// same-site requests, whether cookies are `Secure`, invitation links.
    pub public_url: Arc<str>,
    /// The SSH side: settings, the authorities' key cache, the public URL.
    pub ssh: Arc<SshService>,
    /// The configured identity providers and their flows under way.
    pub provider_flows: Arc<crate::app::provider_flows::ProviderFlows>,
    /// Signs the log's head and keeps the newest signed head.
    pub witness: Arc<crate::app::witness::Witness>,
    /// Whether this server holds the duty lease.
    pub duties: Arc<crate::app::duties::Duties>,
    /// The proxies whose forwarded headers name the client (see `client_address`).
    pub trusted_proxies: Arc<crate::app::client_address::TrustedProxies>,
    /// The forgets this server keeps outside the database.
    pub forget_journal: Arc<crate::app::forgetting::Journal>,
}

impl Shared {
    /// What a forget needs beside the log.
    pub fn forgetter(&self) -> crate::app::forgetting::Forgetter<'_> {
        crate::app::forgetting::Forgetter {
            ledger: &self.ledger,
            witness: &self.witness,
            flows: &self.provider_flows,
            journal: &self.forget_journal,
            test_mode: self.test_mode.as_deref(),
        }
    }
}

/// Facts about this build, for the root document.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub git_commit: String,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.ledger.now()
    }

    /// The suggested client cache time (`cachefor`).
    pub fn cache_for(&self) -> i64 {
        self.ledger.suggested_cache_ms()
    }

    /// Whether forwarded headers are ignored (auth2's `ignoreip`).
    pub fn ignore_ip(&self) -> bool {
        self.ledger.ignore_ip()
    }
}

/// A request's URI as the trace log shows it: an invitation's token (it is in
/// the path of `/web/newuser/{token}`) and a provider's authorization code and
/// state (the query of the way back) never reach the log.
fn logged_uri(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    if path.starts_with("/web/newuser/") {
        return "/web/newuser/…".to_owned();
    }
    if path.starts_with("/login/complete/") || path.starts_with("/link/complete/") {
        return format!("{path}?…");
    }
    uri.to_string()
}

/// Every route of the service, with the error envelope around them.
pub fn router(state: AppState) -> Router {
    let (routes, document) = routes().split_for_parts();
    openapi::publish(&document);
    routes
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), consistency::read_your_writes))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::render_errors))
        .layer(axum::middleware::from_fn(operations::track))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            // Its own target, so a log collector can have it (and the call id) without debug events.
            tracing::debug_span!(
                target: "authledger::request",
                "request",
                method = %request.method(),
                uri = %logged_uri(request.uri()),
                version = ?request.version(),
                call_id = tracing::field::Empty,
            )
        }))
        .with_state(state)
}

/// Every route, each with its OpenAPI entry, and the finished document.
pub fn routes() -> OpenApiRouter<AppState> {
    let mut all = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(openapi::document))
        .merge(root::routes())
        .merge(operations::routes())
        .merge(openapi::behind(Access::Token, v2::routes()))
        .merge(auditor::routes())
        .merge(ssh::routes())
        .merge(provisioning::routes())
        .merge(invites::routes())
        .merge(pages::routes())
        .merge(login::routes())
        .merge(link::routes())
        .merge(openapi::behind(Access::TokenOrSession, admin::routes()))
        .merge(local_account::routes())
        .merge(openapi::behind(Access::TokenOrSession, me::routes()))
        .merge(openapi::behind(Access::TokenOrSession, tokens::routes()))
        .merge(legacy::routes())
        .merge(test_mode::routes());
    openapi::finish(all.get_openapi_mut());
    all
}
