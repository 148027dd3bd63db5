//! The HTTP API (axum): the auth2-compatible routes, the error envelope, the
//! caller checks and the permission table. The only module where HTTP exists.

pub mod admin;
pub mod auditor;
pub mod client;
pub mod consistency;
pub mod error;
pub mod guard;
pub mod invites;
pub mod legacy;
pub mod link;
pub mod local_account;
pub mod login;
pub mod me;
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
use axum::middleware;
use axum::routing::{delete, get, post, put};
use tower_http::trace::TraceLayer;

use crate::app::ledger::Ledger;
use crate::app::ssh::SshService;
use crate::app::test_mode::TestLedger;
use crate::domain::{AuthError, ErrorType, TokenKind, UserName};
use crate::projections::{TokenView, UserRecord, hash_token};
use error::ApiError;
use permissions::Action;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    /// The test-mode log, when test mode is on.
    pub test_mode: Option<Arc<TestLedger>>,
    pub info: Arc<ServiceInfo>,
    /// The SSH side: settings, the authorities' key cache, the public URL.
    pub ssh: Arc<SshService>,
    /// The configured identity providers and their flows under way.
    pub sign_in: Arc<crate::app::sign_in::SignIn>,
    /// Signs the log's head and keeps the newest signed head.
    pub witness: Arc<crate::app::witness::Witness>,
    /// Whether this server holds the duty lease.
    pub duties: Arc<crate::app::duties::Duties>,
}

/// Facts about this build, for the root document.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub git_commit: String,
}

/// The caller behind a token: the token and its (enabled) user.
pub struct Caller {
    pub token: TokenView,
    pub user: UserRecord,
}

impl Caller {
    pub fn name(&self) -> &UserName {
        &self.user.name
    }
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.ledger.now()
    }

    /// The valid token with this value (401 10020 otherwise).
    pub fn token_view(&self, token: &str) -> Result<TokenView, ApiError> {
        let hash = hash_token(token);
        self.ledger
            .model
            .read()
            .tokens
            .find(&hash, self.now())
            .ok_or_else(|| AuthError::bare(ErrorType::InvalidToken).into())
    }

    /// The token's enabled user (403 20010 when disabled).
    pub fn user_of(&self, token: &TokenView) -> Result<UserRecord, ApiError> {
        let model = self.ledger.model.read();
        let user = model.users.get(&token.user).ok_or_else(|| AuthError::bare(ErrorType::InvalidToken))?;
        if user.is_disabled() {
            return Err(AuthError::disabled(user.name.as_str()).into());
        }
        Ok(user.clone())
    }

    /// Token, then token kind (Login only), then enabled user, then the permission.
    pub fn login_caller(&self, token: &str, action: Option<Action>) -> Result<Caller, ApiError> {
        let token = self.token_view(token)?;
        require_login(&token)?;
        let user = self.user_of(&token)?;
        if let Some(action) = action {
            permissions::check(action, &user.roles)?;
        }
        Ok(Caller { token, user })
    }

    /// The suggested client cache time (`cachefor`).
    pub fn cache_for(&self) -> i64 {
        self.ledger.model.read().config.suggested_cache_ms
    }

    pub fn ignore_ip(&self) -> bool {
        self.ledger.model.read().config.ignore_ip
    }
}

/// Most privileged operations take only Login tokens (403 otherwise).
pub fn require_login(token: &TokenView) -> Result<(), ApiError> {
    if token.kind != TokenKind::Login {
        return Err(AuthError::unauthorized(format!(
            "{} tokens are not allowed for this operation",
            token.kind.description()
        ))
        .into());
    }
    Ok(())
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
    Router::new()
        .route("/", get(root::root))
        .route("/healthz", get(operations::healthz))
        .route("/readyz", get(operations::readyz))
        .route("/metrics", get(operations::metrics))
        .route("/api/V2/token", get(v2::introspect).post(v2::create_agent_token))
        .route("/api/V2/me", get(v2::me).merge(put(v2::update_me)))
        .route("/api/V2/users", get(v2::users))
        .route("/api/V2/users/search/{prefix}", get(v2::search))
        .route("/api/V2/admin/anonids", get(v2::anon_ids))
        .route("/api/V2/admin/audit", get(auditor::audit_trail))
        .route("/api/V2/admin/asof", get(auditor::as_of))
        .route("/api/V2/admin/digest", get(auditor::digest))
        .route("/api/V2/ca", get(ssh::authorities))
        .route("/api/V2/admin/ca/rotate", post(ssh::rotate))
        .route("/api/V2/certs/ssh", post(ssh::user_certificate))
        .route("/api/V2/admin/certs", get(ssh::certificates))
        .route("/api/V2/admin/provisiontokens", get(provisioning::list).post(provisioning::issue))
        .route("/api/V2/admin/provisiontokens/{id}", delete(provisioning::delete))
        .route("/api/V2/hosts/join", post(provisioning::join))
        .route("/api/V2/admin/head", get(auditor::signed_head))
        .route("/api/V2/admin/hosts", get(provisioning::hosts))
        .route("/api/V2/admin/hosts/{id}", delete(provisioning::release))
        .route("/api/V2/admin/invites", get(invites::list).post(invites::issue))
        .route("/api/V2/admin/invites/{id}", delete(invites::revoke))
        .route("/web/newuser/{token}", get(invites::open).head(invites::probe))
        .route("/api/V2/invites/complete", post(invites::complete))
        .route("/admin/user/{user}/logins", post(ssh::set_logins))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/login", get(login::page))
        .route("/login/start", post(login::start))
        .route("/login/complete/{provider}", get(login::complete))
        .route("/login/choice", get(login::choice))
        .route("/login/pick", post(login::pick))
        .route("/login/create", post(login::create))
        .route("/login/cancel", post(login::cancel).delete(login::cancel))
        .route("/login/suggestname/{name}", get(login::suggest_name))
        .route("/link", get(link::page))
        .route("/link/start", post(link::start))
        .route("/link/complete/{provider}", get(link::complete))
        .route("/link/choice", get(link::choice))
        .route("/link/pick", post(link::pick))
        .route("/link/cancel", post(link::cancel).delete(link::cancel))
        .route("/me/unlink/{id}", post(link::unlink))
        .route("/admin/policyid", post(admin::remove_policy_id))
        .route("/localaccount/login", get(local_account::login_page).post(local_account::login))
        .route("/localaccount/reset", get(local_account::reset_page).post(local_account::reset))
        .route("/me", get(me::show).post(me::update).put(me::update))
        .route("/customroles", get(me::custom_roles))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/revoke/{id}", post(tokens::revoke).delete(tokens::revoke))
        .route("/tokens/revokeall", post(tokens::revoke_all).delete(tokens::revoke_all))
        .route("/logout", get(tokens::logout_page).post(tokens::logout))
        .route("/me/roles", post(me::remove_roles))
        .route("/admin", get(admin::start))
        .route("/admin/search", post(admin::search))
        .route("/admin/localaccount", get(admin::local_account_page))
        .route("/admin/localaccount/create", post(admin::create_local_account))
        .route("/admin/audit", get(auditor::timeline))
        .route("/admin/user/{user}/history", get(auditor::user_history))
        .route("/admin/user/{user}", get(admin::user))
        .route("/admin/user/{user}/roles", post(admin::set_roles))
        .route("/admin/user/{user}/customroles", post(admin::set_custom_roles))
        .route("/admin/user/{user}/disable", post(admin::disable))
        .route("/admin/user/{user}/forcereset", post(admin::force_reset))
        .route("/admin/user/{user}/unlock", post(admin::unlock))
        .route("/admin/user/{user}/reset", post(admin::reset_password))
        .route("/admin/user/{user}/tokens", get(admin::user_tokens))
        .route("/admin/user/{user}/tokens/revoke/{id}", post(admin::revoke_user_token))
        .route("/admin/user/{user}/tokens/revokeall", post(admin::revoke_user_tokens))
        .route("/admin/customroles", get(admin::custom_roles))
        .route("/admin/customroles/set", post(admin::set_custom_role))
        .route("/admin/customroles/delete", post(admin::delete_custom_role))
        .route("/admin/forcereset", post(admin::force_reset_all))
        .route("/admin/revokeall", post(admin::revoke_all))
        .route("/admin/token", post(admin::view_token))
        .route("/admin/config", get(admin::config).merge(post(admin::update_config)))
        .route("/admin/config/basic", post(admin::update_basic_config))
        .route("/admin/config/token", post(admin::update_token_config))
        .route("/admin/config/reset", post(admin::reset_config))
        .route("/admin/config/provider", post(admin::update_provider_config))
        .route("/admin/config/environment", post(admin::update_environment_config))
        .route("/api/legacy/KBase/Sessions/Login", get(legacy::kbase_get).post(legacy::kbase_login))
        .route("/api/legacy/globus/goauth/token", get(legacy::globus_token_endpoint))
        .route("/api/legacy/globus/users/{user}", get(legacy::globus_user))
        .route("/testmode", get(test_mode::root))
        .route("/testmode/api/V2/testmodeonly/user", post(test_mode::create_user))
        .route("/testmode/api/V2/testmodeonly/user/{name}", get(test_mode::get_user))
        .route("/testmode/api/V2/testmodeonly/token", post(test_mode::create_token))
        .route(
            "/testmode/api/V2/testmodeonly/customroles",
            get(test_mode::custom_roles).merge(post(test_mode::set_custom_role)),
        )
        .route("/testmode/api/V2/testmodeonly/userroles", put(test_mode::set_user_roles))
        .route("/testmode/api/V2/testmodeonly/clear", delete(test_mode::clear))
        .route("/testmode/api/V2/token", get(test_mode::introspect))
        .route("/testmode/api/V2/me", get(test_mode::me))
        .route("/testmode/api/V2/users", get(test_mode::users))
        .route("/testmode/api/legacy/KBase/Sessions/Login", get(legacy::kbase_get).post(legacy::test_kbase_login))
        .route("/testmode/api/legacy/globus/goauth/token", get(legacy::test_globus_token_endpoint))
        .route("/testmode/api/legacy/globus/users/{user}", get(legacy::test_globus_user))
        .route_layer(middleware::from_fn_with_state(state.clone(), consistency::read_your_writes))
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), error::render_errors))
        .layer(middleware::from_fn(operations::track))
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
