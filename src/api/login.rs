//! Signing in through identity providers (upstream `Login`, reference §4):
//! the login page, start, the provider's way back, the choice, pick, create,
//! cancel and the name suggestion. The flow's state travels in upstream's
//! cookies (path `/login`; `HttpOnly` and `SameSite=Lax` here, so the way back
//! from the provider — a top-level navigation — still carries them). The
//! flows themselves are `app::provider_login` and `app::provider_flows`'s; a handler reads
//! the cookies and the query, calls them and answers with a redirect, a page
//! or JSON.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorEnvelope};
use super::pages::{self, Nav};
use super::request::{
    Body, Deferred, FirstQuery, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, cookie,
    parse_context_string, session_cookie,
};
use super::{AppState, views};
use crate::app::provider_flows::{Back, Holder, Purpose, Refusal};
use crate::app::provider_login::{self, Choices, Completion, LoginCompleted, NewAccount};
use crate::domain::names::{is_blank, java_trim, parse_custom_context};
use crate::domain::{AuthError, DisplayName, EmailAddress, ErrorType, IdentityId, PolicyId, UserName};
use crate::projections::TokenView;

/// The in-process cookie: the login flow's temporary token.
pub const LOGIN_TOKEN_COOKIE: &str = "in-process-login-token";
const SESSION_CHOICE_COOKIE: &str = "issessiontoken";
const REDIRECT_COOKIE: &str = "loginredirect";
const ENVIRONMENT_COOKIE: &str = "environment";
/// The process cookies live this long at the start (upstream: 1800 s).
const START_COOKIE_AGE: i64 = 1800;

/// A `Set-Cookie` value for a flow cookie on `path` (no `Max-Age`: the browser session).
pub(crate) fn flow_cookie(name: &str, value: &str, path: &str, max_age: Option<i64>) -> String {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    format!("{name}={value}; Path={path}{age}; HttpOnly; SameSite=Lax")
}

/// A `Set-Cookie` value removing a flow cookie (upstream's placeholder value, `Max-Age=0`).
pub(crate) fn removed_cookie(name: &str, placeholder: &str, path: &str) -> String {
    format!("{name}=\"{placeholder}\"; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// The four login-process cookies, removed.
fn removed_login_cookies() -> Vec<String> {
    vec![
        removed_cookie(LOGIN_TOKEN_COOKIE, "no token", "/login"),
        removed_cookie(SESSION_CHOICE_COOKIE, "no session", "/login"),
        removed_cookie(REDIRECT_COOKIE, "no redirect", "/login"),
        removed_cookie(ENVIRONMENT_COOKIE, "no env", "/login"),
    ]
}

/// A 303 to `location` setting `cookies`.
pub(crate) fn see_other(location: &str, cookies: Vec<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response();
    append_cookies(&mut response, cookies);
    response
}

pub(crate) fn append_cookies(response: &mut Response, cookies: Vec<String>) {
    for cookie in cookies {
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// The environment of a start (upstream §1.3): the configured header, else the form's field.
pub(crate) fn start_environment(state: &AppState, headers: &HeaderMap, field: Option<&str>) -> Option<String> {
    let from_header = state
        .provider_flows
        .providers
        .environments
        .header
        .as_deref()
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .map(|v| java_trim(v).to_owned())
        .filter(|v| !v.is_empty());
    from_header.or_else(|| field.map(|f| java_trim(f).to_owned()).filter(|f| !f.is_empty()))
}

/// The login cookies of a request.
struct LoginCookies {
    token: Option<String>,
    redirect: Option<String>,
    environment: Option<String>,
    session_choice: Option<String>,
}

impl LoginCookies {
    fn of(headers: &HeaderMap) -> Self {
        Self {
            token: cookie(headers, LOGIN_TOKEN_COOKIE).filter(|t| t != "no token"),
            redirect: cookie(headers, REDIRECT_COOKIE).filter(|r| r != "no redirect"),
            environment: cookie(headers, ENVIRONMENT_COOKIE).filter(|e| e != "no env"),
            session_choice: cookie(headers, SESSION_CHOICE_COOKIE).filter(|s| s != "no session"),
        }
    }

    /// The redirect cookie, checked ("fail early"); `None` when there is none.
    fn checked_redirect(&self, state: &AppState) -> Result<Option<String>, ApiError> {
        if let Some(url) = &self.redirect {
            provider_login::check_redirect(&state.provider_flows, &state.ledger, self.environment.as_deref(), url)?;
        }
        Ok(self.redirect.clone())
    }

    /// The in-process token; 400 10010 without it.
    fn required_token(&self) -> Result<&str, ApiError> {
        self.token
            .as_deref()
            .ok_or_else(|| AuthError::new(ErrorType::NoTokenProvided, format!("Missing {LOGIN_TOKEN_COOKIE}")).into())
    }

    /// A persistent login cookie only for exactly `false` ("not a session login").
    fn persistent(&self) -> bool {
        self.session_choice.as_deref() == Some("false")
    }
}

/// The fields of `POST /login/start`'s form (other fields are ignored).
#[derive(ToSchema)]
pub struct LoginStartForm {
    /// The identity provider to sign in with.
    #[schema(value_type = String, required)]
    provider: Option<String>,
    /// Where to go after the login (must match the configured redirect prefix).
    redirecturl: Option<String>,
    /// The environment (when the configured environment header does not name one).
    environment: Option<String>,
    /// Present and not blank: a persistent login cookie.
    stayloggedin: Option<String>,
}

impl FormBody for LoginStartForm {
    fn from_form(form: &Form) -> Self {
        Self {
            provider: form.text("provider"),
            redirecturl: form.text("redirecturl"),
            environment: form.text("environment"),
            stayloggedin: form.text("stayloggedin"),
        }
    }
}

/// Members of `POST /login/pick`'s JSON body.
#[derive(ToSchema)]
pub struct LoginPickRequest {
    /// The chosen identity's id.
    #[schema(value_type = String, required)]
    id: Deferred<String>,
    /// Policy ids the user agrees to.
    #[schema(value_type = Option<Vec<String>>)]
    policyids: Deferred<Vec<Option<String>>>,
    /// Free key/value context stored with the token.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    customcontext: Deferred<BTreeMap<String, String>>,
    /// Link the flow's other unlinked identities to the account too.
    #[schema(value_type = Option<bool>)]
    linkall: Option<Value>,
}

impl JsonBody for LoginPickRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Their types answer in upstream's order, after the process cookies (see `read_choices`).
        Ok(Self {
            id: json.string("id"),
            policyids: json.string_list("policyids"),
            customcontext: json.string_map("customcontext"),
            linkall: json.value("linkall").cloned(),
        })
    }
}

/// The fields of `POST /login/pick`'s form (other fields are ignored).
#[derive(ToSchema)]
pub struct LoginPickForm {
    /// The chosen identity's id.
    #[schema(value_type = String, required)]
    id: Option<String>,
    /// Comma-separated policy ids the user agrees to.
    policyids: Option<String>,
    /// Key/value pairs: `k1, v1; k2, v2`.
    customcontext: Option<String>,
    /// A yes (not blank, `false`, `off`, `no` or `0`): link the flow's other unlinked identities too.
    linkall: Option<String>,
}

impl FormBody for LoginPickForm {
    fn from_form(form: &Form) -> Self {
        Self {
            id: form.text("id"),
            policyids: form.text("policyids"),
            customcontext: form.text("customcontext"),
            linkall: form.text("linkall"),
        }
    }
}

/// Members of `POST /login/create`'s JSON body.
#[derive(ToSchema)]
pub struct LoginCreateRequest {
    /// The chosen identity's id.
    #[schema(value_type = String, required)]
    id: Deferred<String>,
    /// The new account's user name.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The new account's display name.
    #[schema(value_type = String, required)]
    display: Option<String>,
    /// The new account's email address.
    #[schema(value_type = String, required)]
    email: Option<String>,
    /// Policy ids the user agrees to.
    #[schema(value_type = Option<Vec<String>>)]
    policyids: Deferred<Vec<Option<String>>>,
    /// Free key/value context stored with the token.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    customcontext: Deferred<BTreeMap<String, String>>,
    /// Link the flow's other unlinked identities to the account too.
    #[schema(value_type = Option<bool>)]
    linkall: Option<Value>,
}

impl JsonBody for LoginCreateRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // As `LoginPickRequest`'s; the account's members' types answer first, as before the choice.
        Ok(Self {
            id: json.string("id"),
            user: json.string("user")?,
            display: json.string("display")?,
            email: json.string("email")?,
            policyids: json.string_list("policyids"),
            customcontext: json.string_map("customcontext"),
            linkall: json.value("linkall").cloned(),
        })
    }
}

/// The fields of `POST /login/create`'s form (other fields are ignored).
#[derive(ToSchema)]
pub struct LoginCreateForm {
    /// The chosen identity's id.
    #[schema(value_type = String, required)]
    id: Option<String>,
    /// The new account's user name.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The new account's display name.
    #[schema(value_type = String, required)]
    display: Option<String>,
    /// The new account's email address.
    #[schema(value_type = String, required)]
    email: Option<String>,
    /// Comma-separated policy ids the user agrees to.
    policyids: Option<String>,
    /// Key/value pairs: `k1, v1; k2, v2`.
    customcontext: Option<String>,
    /// A yes (not blank, `false`, `off`, `no` or `0`): link the flow's other unlinked identities too.
    linkall: Option<String>,
}

impl FormBody for LoginCreateForm {
    fn from_form(form: &Form) -> Self {
        Self {
            id: form.text("id"),
            user: form.text("user"),
            display: form.text("display"),
            email: form.text("email"),
            policyids: form.text("policyids"),
            customcontext: form.text("customcontext"),
            linkall: form.text("linkall"),
        }
    }
}

/// An identity the login choice offers to create an account from.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginCreateOption {
    /// The identity's id.
    pub id: String,
    /// A free user name for the new account.
    pub availablename: String,
    pub provusername: String,
    pub provfullname: Option<String>,
    pub provemail: Option<String>,
}

/// An account the login choice offers to log in to.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAccountOption {
    pub user: String,
    /// The lowest id of the account's identities in the answer.
    pub id: String,
    pub loginallowed: bool,
    pub disabled: bool,
    pub adminonly: bool,
    pub policyids: Vec<views::PolicyIdView>,
    /// The provider usernames of the account's identities in the answer.
    pub provusernames: Vec<String>,
}

/// The login choice: the accounts to log in to and the identities to create one from.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginChoiceView {
    pub cancelurl: &'static str,
    pub createurl: &'static str,
    pub pickurl: &'static str,
    pub suggestnameurl: &'static str,
    /// Where the login goes after (the redirect cookie).
    pub redirecturl: Option<String>,
    pub provider: String,
    pub creationallowed: bool,
    /// When the choice expires, epoch milliseconds.
    pub expires: i64,
    pub create: Vec<LoginCreateOption>,
    pub login: Vec<LoginAccountOption>,
}

/// A pick or create answered in JSON: the new login token and where to go.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResult {
    pub redirecturl: Option<String>,
    pub token: views::NewUiToken,
}

/// `{"availablename": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestedName {
    pub availablename: String,
}

/// The providers to sign in with.
#[utoipa::path(
    get,
    path = "/login",
    operation_id = "login_page",
    tag = "login",
    responses((status = 200, description = "The login page.", content_type = "text/html", body = String)),
)]
pub async fn page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let providers = state.provider_flows.enabled(&state.ledger);
    let origins = state.provider_flows.form_targets(&state.ledger, Purpose::Login);
    pages::account::provider_login(Nav::from_cookie(&state, &context.headers), providers, &origins)
}

/// Starts a login: on to the provider, with the process cookies.
#[utoipa::path(
    post,
    path = "/login/start",
    operation_id = "login_start",
    tag = "login",
    request_body(content((LoginStartForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 303, description = "On to the provider's authorization page, with the login process cookies."),
        (status = 400, description = "A missing provider or an illegal redirect URL.", body = ErrorEnvelope),
        (status = 401, description = "No such provider.", body = ErrorEnvelope),
    ),
)]
pub async fn start(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let form: LoginStartForm = body.form()?.read();
    let environment = start_environment(&state, &context.headers, form.environment.as_deref());
    let provider = form.provider.as_deref().map(java_trim).filter(|p| !p.is_empty());
    let Some(provider) = provider else {
        return Err(AuthError::missing("provider").into());
    };
    let redirect = form.redirecturl.as_deref().map(java_trim).filter(|r| !r.is_empty());
    if let Some(url) = redirect {
        provider_login::check_redirect(&state.provider_flows, &state.ledger, environment.as_deref(), url)?;
    }
    let quota = context.quota_key();
    // A restart replaces the flow of the cookie the browser still has.
    if let Some(previous) = LoginCookies::of(&context.headers).token {
        state.provider_flows.forget(&state.ledger, &previous).await?;
    }
    let holder = Holder::Client(Some(&quota));
    let started =
        state.provider_flows.send(&state.ledger, provider, environment.as_deref(), Purpose::Login, holder).await?;
    let session = if is_blank(form.stayloggedin.as_deref()) { "true" } else { "false" };
    let cookies = vec![
        flow_cookie(SESSION_CHOICE_COOKIE, session, "/login", Some(START_COOKIE_AGE)),
        match redirect {
            Some(url) => flow_cookie(REDIRECT_COOKIE, url, "/login", Some(START_COOKIE_AGE)),
            None => removed_cookie(REDIRECT_COOKIE, "no redirect", "/login"),
        },
        match &environment {
            Some(e) => flow_cookie(ENVIRONMENT_COOKIE, e, "/login", Some(START_COOKIE_AGE)),
            None => removed_cookie(ENVIRONMENT_COOKIE, "no env", "/login"),
        },
        flow_cookie(LOGIN_TOKEN_COOKIE, &started.token, "/login", None),
    ];
    Ok(see_other(&started.authorize_url, cookies))
}

/// The provider's way back.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompleteQuery {
    /// The provider's authorization code.
    pub code: Option<String>,
    /// The state the flow sent the provider to.
    pub state: Option<String>,
    /// The provider's error, when it did not authorize.
    pub error: Option<String>,
}

/// The provider's way back: logged in at once, or on to the choice.
#[utoipa::path(
    get,
    path = "/login/complete/{provider}",
    operation_id = "login_complete",
    tag = "login",
    params(("provider" = String, Path, description = "The identity provider."), CompleteQuery),
    responses(
        (status = 303, description = "Logged in (on to the redirect URL or `/me`, with the login cookie), or on to the choice."),
        (status = 400, description = "No login process cookie, no authorization code, or an illegal redirect.", body = ErrorEnvelope),
        (status = 401, description = "No such provider, or the provider's identity could not be had.", body = ErrorEnvelope),
    ),
)]
pub async fn complete(
    State(state): State<AppState>,
    context: RequestContext,
    Path(provider): Path<String>,
    FirstQuery(query): FirstQuery<CompleteQuery>,
) -> Result<Response, ApiError> {
    let cookies = LoginCookies::of(&context.headers);
    let redirect = cookies.checked_redirect(&state)?;
    let client = context.client_info();
    if let Some(error) = query.error.as_deref().filter(|e| !is_blank(Some(e))) {
        let quota = context.quota_key();
        let holder = Holder::Client(Some(&quota));
        let replacing = cookies.token.as_deref();
        let failure = Refusal { provider: &provider, error, environment: cookies.environment.as_deref() };
        let (token, expires) =
            state.provider_flows.fail(&state.ledger, failure, Purpose::Login, replacing, holder).await?;
        return delayed(&state, &cookies, &token, expires);
    }
    let token = cookies.required_token()?;
    let Some(code) = query.code.as_deref().filter(|c| !is_blank(Some(c))) else {
        return Err(AuthError::missing("authorization code").into());
    };
    let back = Back {
        provider: &provider,
        token,
        code,
        state: query.state.as_deref(),
        environment: cookies.environment.as_deref(),
    };
    let completion = Completion { back, client, quota: context.quota_key() };
    let metadata = context.anonymous_metadata();
    match provider_login::complete(&state.provider_flows, &state.ledger, completion, &metadata).await? {
        LoginCompleted::LoggedIn { value, token } => Ok(logged_in(&state, &cookies, redirect, &value, &token)),
        LoginCompleted::Choose { token, expires } => delayed(&state, &cookies, &token, expires),
    }
}

/// A login done in the browser: the login cookie, the process cookies gone, on to the redirect or `/me`.
fn logged_in(
    state: &AppState,
    cookies: &LoginCookies,
    redirect: Option<String>,
    value: &str,
    token: &TokenView,
) -> Response {
    let max_age = cookies.persistent().then(|| ((token.expires - state.now()) / 1000).clamp(0, i64::from(i32::MAX)));
    let mut set = removed_login_cookies();
    set.push(session_cookie(value, max_age));
    see_other(redirect.as_deref().unwrap_or("/me"), set)
}

/// On to the choice: the new in-process token, the other cookies kept for the flow's remaining life.
fn delayed(state: &AppState, cookies: &LoginCookies, token: &str, expires: i64) -> Result<Response, ApiError> {
    let environment = cookies.environment.as_deref();
    let urls = state.provider_flows.urls(&state.ledger, environment)?;
    let target = urls.complete_login.unwrap_or_else(|| "/login/choice".to_owned());
    let age = Some(((expires - state.now()) / 1000).max(0));
    let keep = |name: &str, value: Option<&str>, placeholder: &str| match value {
        Some(v) => flow_cookie(name, v, "/login", age),
        None => removed_cookie(name, placeholder, "/login"),
    };
    let session = cookies.session_choice.as_deref().filter(|s| *s == "true" || *s == "false");
    let set = vec![
        flow_cookie(LOGIN_TOKEN_COOKIE, token, "/login", None),
        keep(REDIRECT_COOKIE, cookies.redirect.as_deref(), "no redirect"),
        keep(SESSION_CHOICE_COOKIE, session, "no session"),
        keep(ENVIRONMENT_COOKIE, environment, "no env"),
    ];
    Ok(see_other(&target, set))
}

/// The login choice: the accounts to log in to and the identities to create one from.
#[utoipa::path(
    get,
    path = "/login/choice",
    operation_id = "login_choice",
    tag = "login",
    responses(
        (status = 200, description = "The choice (a page for a browser).",
            content((LoginChoiceView = "application/json"), (String = "text/html"))),
        (status = 400, description = "No login process cookie, or an illegal redirect.", body = ErrorEnvelope),
        (status = 401, description = "An expired or unknown login process.", body = ErrorEnvelope),
    ),
)]
pub async fn choice(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let cookies = LoginCookies::of(&context.headers);
    let redirect = cookies.checked_redirect(&state)?;
    let token = cookies.required_token()?;
    let choice = provider_login::choice(&state.provider_flows, &state.ledger, token).await?;
    if context.wants_html() {
        let nav = Nav::from_cookie(&state, &context.headers);
        return pages::account::login_choice(nav, &choice, redirect.as_deref());
    }
    let create = choice
        .create
        .iter()
        .map(|c| LoginCreateOption {
            id: c.id.to_string(),
            availablename: c.available_name.clone(),
            provusername: c.provider_username.clone(),
            provfullname: c.provider_fullname.clone(),
            provemail: c.provider_email.clone(),
        })
        .collect();
    let login = choice
        .login
        .iter()
        .map(|l| LoginAccountOption {
            user: l.user.to_string(),
            id: l.id.to_string(),
            loginallowed: l.login_allowed,
            disabled: l.disabled,
            adminonly: l.admin_only,
            policyids: l
                .policy_ids
                .iter()
                .map(|(id, at)| views::PolicyIdView { id: id.to_string(), agreedon: *at })
                .collect(),
            provusernames: l.provider_usernames.clone(),
        })
        .collect();
    Ok(Json(LoginChoiceView {
        cancelurl: "cancel",
        createurl: "create",
        pickurl: "pick",
        suggestnameurl: "suggestname",
        redirecturl: redirect,
        provider: choice.provider,
        creationallowed: choice.creation_allowed,
        expires: choice.expires,
        create,
        login,
    })
    .into_response())
}

/// What pick and create read alike, in upstream's order after the body's
/// shape: redirect, custom context, the in-process cookie, `id`, policy ids,
/// then (JSON) `linkall`.
struct Chosen {
    redirect: Option<String>,
    token: String,
    choices: Choices,
}

/// The members pick and create read alike, from the JSON body or the form.
enum Choosing {
    Json(LoginPickRequest),
    Form(LoginPickForm),
}

fn read_choices(
    state: &AppState,
    context: &RequestContext,
    choosing: &Choosing,
    before_policy_ids: impl FnOnce() -> Result<(), ApiError>,
) -> Result<(Chosen, LoginCookies), ApiError> {
    let cookies = LoginCookies::of(&context.headers);
    let redirect = cookies.checked_redirect(state)?;
    let custom = match choosing {
        Choosing::Form(form) => parse_context_string(form.customcontext.as_deref())?,
        Choosing::Json(json) => json.customcontext.clone()?.unwrap_or_default(),
    };
    let custom = parse_custom_context(&custom)?;
    let token = cookies.required_token()?.to_owned();
    let id = match choosing {
        Choosing::Form(form) => form.id.clone(),
        Choosing::Json(json) => json.id.clone()?,
    };
    let id = id.filter(|i| !is_blank(Some(i))).ok_or_else(|| AuthError::missing("id"))?;
    before_policy_ids()?;
    let policy_ids = match choosing {
        Choosing::Form(form) => form
            .policyids
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(java_trim)
            .filter(|p| !p.is_empty())
            .map(|p| PolicyId::parse(Some(p)))
            .collect::<Result<BTreeSet<_>, _>>()?,
        Choosing::Json(json) => json
            .policyids
            .clone()?
            .unwrap_or_default()
            .iter()
            .map(|p| PolicyId::parse(p.as_deref()))
            .collect::<Result<BTreeSet<_>, _>>()?,
    };
    let link_all = match choosing {
        // Upstream links all for any value, `false` too; here only for a yes.
        Choosing::Form(form) => form.linkall.as_deref().is_some_and(is_yes),
        Choosing::Json(json) => match &json.linkall {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(AuthError::illegal("linkall must be a boolean").into()),
        },
    };
    let choices = Choices { id: IdentityId::named(&id), policy_ids, custom, link_all, client: context.client_info() };
    Ok((Chosen { redirect, token, choices }, cookies))
}

/// The answer of a successful pick or create: a form's browser gets the login
/// cookie and a 303; JSON gets the token (`status`), and no login cookie.
fn chosen_answer(
    state: &AppState,
    input: &Input,
    cookies: &LoginCookies,
    redirect: Option<String>,
    status: StatusCode,
    (value, token): (String, TokenView),
) -> Response {
    if input.is_form() {
        return logged_in(state, cookies, redirect, &value, &token);
    }
    let answer = LoginResult { redirecturl: redirect, token: views::NewUiToken::of(&token, &value) };
    let mut response = (status, Json(answer)).into_response();
    append_cookies(&mut response, removed_login_cookies());
    response
}

/// Logs in to the account of a chosen identity.
#[utoipa::path(
    post,
    path = "/login/pick",
    operation_id = "login_pick",
    tag = "login",
    request_body(content((LoginPickRequest = "application/json"), (LoginPickForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "JSON: the new login token; the process cookies removed.", body = LoginResult),
        (status = 303, description = "A form: logged in, on to the redirect URL or `/me` with the login cookie."),
        (status = 400, description = "A missing id, no login process cookie, an illegal member, redirect, context or policy id.", body = ErrorEnvelope),
        (status = 401, description = "An expired or unknown login process.", body = ErrorEnvelope),
        (status = 403, description = "A disabled account, or login restricted to administrators.", body = ErrorEnvelope),
    ),
)]
pub async fn pick(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    let choosing = match &input {
        Input::Json(json) => Choosing::Json(json.read()?),
        Input::Form(form) => Choosing::Form(form.read()),
    };
    let (chosen, cookies) = read_choices(&state, &context, &choosing, || Ok(()))?;
    let metadata = context.anonymous_metadata();
    let issued =
        provider_login::pick(&state.provider_flows, &state.ledger, &chosen.token, chosen.choices, &metadata).await?;
    Ok(chosen_answer(&state, &input, &cookies, chosen.redirect, StatusCode::OK, issued))
}

/// Creates an account from a chosen identity and logs in to it.
#[utoipa::path(
    post,
    path = "/login/create",
    operation_id = "login_create",
    tag = "login",
    request_body(content((LoginCreateRequest = "application/json"), (LoginCreateForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "JSON: the new login token; the process cookies removed.", body = LoginResult),
        (status = 303, description = "A form: created and logged in, on to the redirect URL or `/me` with the login cookie."),
        (status = 400, description = "A missing or illegal field, no login process cookie, a taken user name.", body = ErrorEnvelope),
        (status = 401, description = "An expired or unknown login process.", body = ErrorEnvelope),
        (status = 403, description = "Account creation is not allowed.", body = ErrorEnvelope),
    ),
)]
pub async fn create(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    let ((user, display, email), choosing) = match &input {
        Input::Json(json) => {
            let LoginCreateRequest { id, user, display, email, policyids, customcontext, linkall } = json.read()?;
            ((user, display, email), Choosing::Json(LoginPickRequest { id, policyids, customcontext, linkall }))
        }
        Input::Form(form) => {
            let LoginCreateForm { id, user, display, email, policyids, customcontext, linkall } = form.read();
            ((user, display, email), Choosing::Form(LoginPickForm { id, policyids, customcontext, linkall }))
        }
    };
    let mut account = None;
    let (chosen, cookies) = read_choices(&state, &context, &choosing, || {
        account = Some(NewAccount {
            user: UserName::parse(user.as_deref())?,
            display: DisplayName::parse(display.as_deref())?,
            email: EmailAddress::parse(email.as_deref())?,
        });
        Ok(())
    })?;
    let account = account.ok_or_else(|| ApiError::internal("the new account's fields were not read"))?;
    let metadata = context.anonymous_metadata();
    let issued =
        provider_login::create(&state.provider_flows, &state.ledger, &chosen.token, account, chosen.choices, &metadata)
            .await?;
    Ok(chosen_answer(&state, &input, &cookies, chosen.redirect, StatusCode::CREATED, issued))
}

/// A form's box or field that says yes: present, not blank, and not `false`, `off`, `no` or `0`.
fn is_yes(value: &str) -> bool {
    let value = java_trim(value).to_ascii_lowercase();
    !value.is_empty() && !["false", "off", "no", "0"].contains(&value.as_str())
}

/// Cancels a login: the flow forgotten, the process cookies removed.
#[utoipa::path(
    method(post, delete),
    path = "/login/cancel",
    operation_id = "login_cancel",
    tag = "login",
    responses(
        (status = 204, description = "Cancelled; the process cookies removed."),
        (status = 400, description = "No login process cookie.", body = ErrorEnvelope),
    ),
)]
pub async fn cancel(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let cookies = LoginCookies::of(&context.headers);
    let token = cookies.required_token()?;
    state.provider_flows.forget(&state.ledger, token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    append_cookies(&mut response, removed_login_cookies());
    Ok(response)
}

/// A free user name like the one given.
///
/// Free among every account, disabled ones included, and the names pending
/// invitations are for. No authentication.
#[utoipa::path(
    get,
    path = "/login/suggestname/{name}",
    tag = "login",
    params(("name" = String, Path, description = "The wanted name.")),
    responses((status = 200, description = "A free user name.", body = SuggestedName)),
)]
pub async fn suggest_name(State(state): State<AppState>, Path(name): Path<String>) -> Json<SuggestedName> {
    Json(SuggestedName { availablename: provider_login::suggest_name(&state.ledger, &name) })
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(start))
        .routes(routes!(complete))
        .routes(routes!(choice))
        .routes(routes!(pick))
        .routes(routes!(create))
        .routes(routes!(cancel))
        .routes(routes!(suggest_name))
}
