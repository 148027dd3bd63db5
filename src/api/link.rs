//! Linking provider identities to one's account (upstream `Link`, reference
//! §5) and unlinking them (§6).
//! The link flow's token travels in the `in-process-link-token` cookie (path
//! `/link`, a browser-session cookie: closing the browser ends the link).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorEnvelope};
use super::login::{CompleteQuery, append_cookies, flow_cookie, removed_cookie, see_other, start_environment};
use super::openapi::{Access, behind};
use super::pages::{self, Nav};
use super::request::{
    Body, Deferred, FirstQuery, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, any_token, cookie,
    cookie_token, no_token,
};
use super::{AppState, Caller};
use crate::app::links::{self, LinkCompleted};
use crate::app::provider_flows::{Back, Holder, Purpose, Refusal};
use crate::domain::names::{is_blank, java_trim};
use crate::domain::{AuthError, ErrorType, IdentityId};

/// The in-process cookie of a link.
pub const LINK_TOKEN_COOKIE: &str = "in-process-link-token";
const ENVIRONMENT_COOKIE: &str = "environment";
const START_COOKIE_AGE: i64 = 1800;

fn link_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, LINK_TOKEN_COOKIE).filter(|t| t != "no token")
}

fn environment_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, ENVIRONMENT_COOKIE).filter(|e| e != "no env")
}

fn required_link_cookie(headers: &HeaderMap) -> Result<String, ApiError> {
    link_cookie(headers)
        .ok_or_else(|| AuthError::new(ErrorType::NoTokenProvided, format!("Missing {LINK_TOKEN_COOKIE}")).into())
}

fn removed_link_cookies() -> Vec<String> {
    vec![removed_cookie(LINK_TOKEN_COOKIE, "no token", "/link"), removed_cookie(ENVIRONMENT_COOKIE, "no env", "/link")]
}

/// A Login-token caller of an enabled account that may link (60000 for a local one).
fn linking_caller(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let caller = state.login_caller(token, None)?;
    links::check_may_link(&caller.user)?;
    Ok(caller)
}

/// The fields of `POST /link/start`'s form (other fields are ignored).
#[derive(ToSchema)]
pub struct LinkStartForm {
    /// The identity provider to link an identity of.
    #[schema(value_type = String, required)]
    provider: Option<String>,
    /// The environment (when the configured environment header does not name one).
    environment: Option<String>,
    /// The caller's login token (else the session cookie's).
    token: Option<String>,
}

impl FormBody for LinkStartForm {
    fn from_form(form: &Form) -> Self {
        Self { provider: form.text("provider"), environment: form.text("environment"), token: form.text("token") }
    }
}

/// Members of `POST /link/pick`'s body.
#[derive(ToSchema)]
pub struct LinkPickRequest {
    /// The identity to link; without it, every identity of the flow no account has.
    #[schema(value_type = Option<String>)]
    id: Deferred<String>,
}

impl JsonBody for LinkPickRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Its type answers after the token, the link cookie and the caller, where it is used.
        Ok(Self { id: json.string("id") })
    }
}

impl FormBody for LinkPickRequest {
    fn from_form(form: &Form) -> Self {
        Self { id: Ok(form.text("id")) }
    }
}

/// An identity of the link flow that no account has.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkableIdentity {
    pub id: String,
    pub provusername: String,
}

/// An identity of the link flow that an account (maybe the caller's) has.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedIdentity {
    pub user: String,
    pub id: String,
    pub provusername: String,
}

/// The link choice: the identities to link, and those already linked.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkChoiceView {
    pub user: String,
    pub provider: String,
    /// Whether there is an identity to link.
    pub haslinks: bool,
    /// When the choice expires, epoch milliseconds.
    pub expires: i64,
    pub cancelurl: &'static str,
    pub pickurl: &'static str,
    pub idents: Vec<LinkableIdentity>,
    pub linked: Vec<LinkedIdentity>,
}

/// The providers to link an identity of (any token type).
#[utoipa::path(
    get,
    path = "/link",
    operation_id = "link_page",
    tag = "link",
    responses(
        (status = 200, description = "The link page.", content_type = "text/html", body = String),
        (status = 400, description = "No session cookie.", body = ErrorEnvelope),
        (status = 403, description = "A disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = cookie_token(&context.headers).ok_or_else(no_token)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    let providers = if user.local { Vec::new() } else { state.provider_flows.enabled(&state.ledger) };
    let origins = if user.local { Vec::new() } else { state.provider_flows.form_targets(&state.ledger, Purpose::Link) };
    pages::account::link(&user, providers, &origins)
}

/// Starts a link: on to the provider (the token from the form's `token`, else the cookie).
#[utoipa::path(
    post,
    path = "/link/start",
    operation_id = "link_start",
    tag = "link",
    request_body(content((LinkStartForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 303, description = "On to the provider's authorization page, with the link process cookies."),
        (status = 400, description = "A missing provider, an unknown environment.", body = ErrorEnvelope),
        (status = 401, description = "No such provider, or an invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn start(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let form: LinkStartForm = body.form()?.read();
    let environment = start_environment(&state, &context.headers, form.environment.as_deref());
    let Some(provider) = form.provider.as_deref().map(java_trim).filter(|p| !p.is_empty()) else {
        return Err(AuthError::missing("provider").into());
    };
    let token = form
        .token
        .as_deref()
        .map(java_trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or_else(|| cookie_token(&context.headers))
        .ok_or_else(no_token)?;
    // Upstream's order: the provider and the environment before the token.
    let found = state.provider_flows.provider(&state.ledger, provider)?;
    state.provider_flows.redirect_uri(found, environment.as_deref(), Purpose::Link)?;
    let caller = state.login_caller(&token, None)?;
    // A restart replaces the link the browser still has under way.
    if let Some(previous) = link_cookie(&context.headers) {
        state.provider_flows.forget(&state.ledger, &previous).await?;
    }
    let started =
        links::start(&state.provider_flows, &state.ledger, &caller.user, provider, environment.as_deref()).await?;
    let cookies = vec![
        match &environment {
            Some(e) => flow_cookie(ENVIRONMENT_COOKIE, e, "/link", Some(START_COOKIE_AGE)),
            None => removed_cookie(ENVIRONMENT_COOKIE, "no env", "/link"),
        },
        flow_cookie(LINK_TOKEN_COOKIE, &started.token, "/link", None),
    ];
    Ok(see_other(&started.authorize_url, cookies))
}

/// The provider's way back: linked at once, or on to the choice.
#[utoipa::path(
    get,
    path = "/link/complete/{provider}",
    operation_id = "link_complete",
    tag = "link",
    params(("provider" = String, Path, description = "The identity provider."), CompleteQuery),
    responses(
        (status = 303, description = "Linked (on to the environment's post-link page or `/me`), or on to the choice."),
        (status = 400, description = "No link process cookie, or no authorization code.", body = ErrorEnvelope),
        (status = 401, description = "No such provider, or the provider's identity could not be had.", body = ErrorEnvelope),
    ),
)]
pub async fn complete(
    State(state): State<AppState>,
    context: RequestContext,
    Path(provider): Path<String>,
    FirstQuery(query): FirstQuery<CompleteQuery>,
) -> Result<Response, ApiError> {
    let environment = environment_cookie(&context.headers);
    if let Some(error) = query.error.as_deref().filter(|e| !is_blank(Some(e))) {
        let quota = context.quota_key();
        let replacing = link_cookie(&context.headers);
        let holder = Holder::Client(Some(&quota));
        let failure = Refusal { provider: &provider, error, environment: environment.as_deref() };
        let (token, expires) =
            state.provider_flows.fail(&state.ledger, failure, Purpose::Link, replacing.as_deref(), holder).await?;
        return delayed(&state, environment.as_deref(), &token, expires);
    }
    let token = required_link_cookie(&context.headers)?;
    let Some(code) = query.code.as_deref().filter(|c| !is_blank(Some(c))) else {
        return Err(AuthError::missing("authorization code").into());
    };
    let back = Back {
        provider: &provider,
        token: &token,
        code,
        state: query.state.as_deref(),
        environment: environment.as_deref(),
    };
    let metadata = context.anonymous_metadata();
    match links::complete(&state.provider_flows, &state.ledger, back, &metadata).await? {
        LinkCompleted::Linked => linked(&state, environment.as_deref()),
        LinkCompleted::Choose { expires } => delayed(&state, environment.as_deref(), &token, expires),
    }
}

/// After a link: on to the environment's `postlinkredirect` or `/me`, the link cookies removed.
fn linked(state: &AppState, environment: Option<&str>) -> Result<Response, ApiError> {
    let target = state.provider_flows.urls(&state.ledger, environment)?.post_link.unwrap_or_else(|| "/me".to_owned());
    Ok(see_other(&target, removed_link_cookies()))
}

/// On to the link choice, the flow's cookies kept for its remaining life.
fn delayed(state: &AppState, environment: Option<&str>, token: &str, expires: i64) -> Result<Response, ApiError> {
    let target = state
        .provider_flows
        .urls(&state.ledger, environment)?
        .complete_link
        .unwrap_or_else(|| "/link/choice".to_owned());
    let age = Some(((expires - state.now()) / 1000).max(0));
    let cookies = vec![
        flow_cookie(LINK_TOKEN_COOKIE, token, "/link", None),
        match environment {
            Some(e) => flow_cookie(ENVIRONMENT_COOKIE, e, "/link", age),
            None => removed_cookie(ENVIRONMENT_COOKIE, "no env", "/link"),
        },
    ];
    Ok(see_other(&target, cookies))
}

/// The link choice: the identities to link (the link process cookie names the flow).
#[utoipa::path(
    get,
    path = "/link/choice",
    operation_id = "link_choice",
    tag = "link",
    responses(
        (status = 200, description = "The choice (a page for a browser).",
            content((LinkChoiceView = "application/json"), (String = "text/html"))),
        (status = 400, description = "No token, no link process cookie, or a local account.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token, or an expired or unknown link process.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, a disabled account, or another account's link.", body = ErrorEnvelope),
    ),
)]
pub async fn choice(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let link = required_link_cookie(&context.headers)?;
    let caller = linking_caller(&state, &token)?;
    let choice = links::choice(&state.provider_flows, &state.ledger, &caller.user, &link).await?;
    if context.wants_html() {
        let environment = environment_cookie(&context.headers);
        let post_link = state.provider_flows.urls(&state.ledger, environment.as_deref())?.post_link;
        return pages::account::link_choice(Nav::of_caller(&caller), &choice, post_link.as_deref());
    }
    let identities: Vec<_> = choice
        .identities
        .iter()
        .map(|i| LinkableIdentity { id: i.id.to_string(), provusername: i.username.clone() })
        .collect();
    let linked = choice
        .linked
        .iter()
        .map(|l| LinkedIdentity {
            user: l.user.to_string(),
            id: l.id.to_string(),
            provusername: l.provider_username.clone(),
        })
        .collect();
    Ok(Json(LinkChoiceView {
        user: choice.user.to_string(),
        provider: choice.provider,
        haslinks: !identities.is_empty(),
        expires: choice.expires,
        cancelurl: "cancel",
        pickurl: "pick",
        idents: identities,
        linked,
    })
    .into_response())
}

/// Links one identity (`id`) or, without it, all new ones.
#[utoipa::path(
    post,
    path = "/link/pick",
    operation_id = "link_pick",
    tag = "link",
    request_body(content((LinkPickRequest = "application/json"), (LinkPickRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "JSON: linked; the link process cookies removed."),
        (status = 303, description = "A form: linked, on to the environment's post-link page or `/me`."),
        (status = 400, description = "No token, no link process cookie, an unknown member, or the identity cannot be linked.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token, or an expired or unknown link process.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, a disabled account, or another account's link.", body = ErrorEnvelope),
    ),
)]
pub async fn pick(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    let request: LinkPickRequest = input.read()?;
    let token = any_token(&context.headers)?;
    let link = required_link_cookie(&context.headers)?;
    let caller = linking_caller(&state, &token)?;
    let id = request.id?.filter(|i| !is_blank(Some(i))).map(|i| IdentityId::named(&i));
    // Where a form goes after, first: nothing is linked for a request that cannot be answered.
    let after = match input {
        Input::Form(_) => Some(linked(&state, environment_cookie(&context.headers).as_deref())?),
        Input::Json(_) => None,
    };
    links::pick(&state.provider_flows, &state.ledger, &caller.user, &caller.acting(&context), &link, id).await?;
    if let Some(after) = after {
        return Ok(after);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    append_cookies(&mut response, removed_link_cookies());
    Ok(response)
}

/// Cancels a link: the flow forgotten, its cookies removed.
#[utoipa::path(
    method(post, delete),
    path = "/link/cancel",
    operation_id = "link_cancel",
    tag = "link",
    responses(
        (status = 204, description = "Cancelled; the link process cookies removed."),
        (status = 400, description = "No link process cookie.", body = ErrorEnvelope),
    ),
)]
pub async fn cancel(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let link = required_link_cookie(&context.headers)?;
    state.provider_flows.forget(&state.ledger, &link).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    append_cookies(&mut response, removed_link_cookies());
    Ok(response)
}

/// Unlinks an identity: it no longer signs in to the caller's account.
#[utoipa::path(
    post,
    path = "/me/unlink/{id}",
    tag = "link",
    params(("id" = String, Path, description = "The identity's id.")),
    responses(
        (status = 204, description = "Unlinked."),
        (status = 400, description = "No token, or the identity cannot be unlinked (the account's last, or not its own).", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn unlink(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token = cookie_token(&context.headers).or_else(|| super::request::header_token(&context.headers));
    let token = token.ok_or_else(no_token)?;
    if is_blank(Some(&id)) {
        return Err(AuthError::missing("identityID").into());
    }
    let caller = state.login_caller(&token, None)?;
    links::unlink(&state.ledger, &caller.acting(&context), IdentityId::named(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    let browser = OpenApiRouter::new().routes(routes!(page)).routes(routes!(start));
    let signed_in = OpenApiRouter::new().routes(routes!(choice)).routes(routes!(pick)).routes(routes!(unlink));
    OpenApiRouter::new()
        .routes(routes!(complete))
        .routes(routes!(cancel))
        .merge(behind(Access::Session, browser))
        .merge(behind(Access::TokenOrSession, signed_in))
}
