//! Local accounts: password login and password change (contract §9 and the
//! upstream `LocalAccounts` resource). Each takes a form (the browser flow:
//! 303 redirects and the session cookie) or a JSON body (scripts: the token
//! in the answer).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorEnvelope};
use super::pages::{self, Nav};
use super::request::FirstQuery;
use super::request::{
    Body, Deferred, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, device_cookie, parse_context_string,
    removed_session_cookie, session_cookie,
};
use super::{AppState, views};
use crate::app::accounts::{self, LoginOutcome, PasswordChange, PasswordLogin};
use crate::domain::names::{is_blank, parse_custom_context};
use crate::domain::{AuthError, UserName};

/// `?user=` of the two local-account pages (prefills the form).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The user name the form starts with.
    user: Option<String>,
}

/// Members of `POST /localaccount/login`'s JSON body.
#[derive(ToSchema)]
pub struct LocalLoginRequest {
    /// The user name.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The password.
    #[schema(value_type = String, required)]
    pwd: Option<String>,
    /// Ignored in JSON (the token is in the answer).
    stayloggedin: Option<bool>,
    /// Free key/value context stored with the token.
    customcontext: Option<BTreeMap<String, String>>,
    /// The second factor's current code, when the account has one.
    second_factor_token: Option<String>,
}

impl JsonBody for LocalLoginRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            user: json.string("user")?,
            pwd: json.string("pwd")?,
            stayloggedin: json.boolean("stayloggedin")?,
            customcontext: json.string_map("customcontext")?,
            second_factor_token: json.string("second_factor_token")?,
        })
    }
}

/// The fields of `POST /localaccount/login`'s form (other fields are ignored).
#[derive(ToSchema)]
pub struct LocalLoginForm {
    /// The user name.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The password.
    #[schema(value_type = String, required)]
    pwd: Option<String>,
    /// Present: a persistent session cookie; absent: a browser-session cookie.
    stayloggedin: Option<String>,
    /// Key/value pairs: `k1, v1; k2, v2`.
    customcontext: Option<String>,
    /// The second factor's current code, when the account has one.
    second_factor_token: Option<String>,
}

impl FormBody for LocalLoginForm {
    fn from_form(form: &Form) -> Self {
        Self {
            user: form.text("user"),
            pwd: form.text("pwd"),
            stayloggedin: form.text("stayloggedin"),
            customcontext: form.text("customcontext"),
            second_factor_token: form.text("second_factor_token"),
        }
    }
}

/// Members of `POST /localaccount/reset`'s body.
#[derive(ToSchema)]
pub struct LocalResetRequest {
    /// The user name.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The current password.
    #[schema(value_type = String, required)]
    pwdold: Option<String>,
    /// The new password.
    #[schema(value_type = String, required)]
    pwdnew: Option<String>,
    /// The second factor's current code, when the account has one.
    #[schema(value_type = Option<String>)]
    second_factor_token: Deferred<String>,
}

impl JsonBody for LocalResetRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            user: json.string("user")?,
            pwdold: json.string("pwdold")?,
            pwdnew: json.string("pwdnew")?,
            // Its type answers after the password rules, where it is used.
            second_factor_token: json.string("second_factor_token"),
        })
    }
}

impl FormBody for LocalResetRequest {
    fn from_form(form: &Form) -> Self {
        Self {
            user: form.text("user"),
            pwdold: form.text("pwdold"),
            pwdnew: form.text("pwdnew"),
            second_factor_token: Ok(form.text("second_factor_token")),
        }
    }
}

/// The local-account login form.
#[utoipa::path(
    get,
    path = "/localaccount/login",
    operation_id = "local_login_page",
    tag = "account",
    params(UserQuery),
    responses((status = 200, description = "The login form.", content_type = "text/html", body = String)),
)]
pub async fn login_page(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<UserQuery>,
) -> Result<Response, ApiError> {
    pages::account::login(Nav::from_cookie(&state, &context.headers), query.user.as_deref())
}

/// The password-change form.
#[utoipa::path(
    get,
    path = "/localaccount/reset",
    operation_id = "local_reset_page",
    tag = "account",
    params(UserQuery),
    responses((status = 200, description = "The password-change form.", content_type = "text/html", body = String)),
)]
pub async fn reset_page(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<UserQuery>,
) -> Result<Response, ApiError> {
    pages::account::reset(Nav::from_cookie(&state, &context.headers), query.user.as_deref())
}

fn missing(field: &str) -> ApiError {
    AuthError::missing(field).into()
}

/// Logs in to a local account with its password.
#[utoipa::path(
    post,
    path = "/localaccount/login",
    operation_id = "local_login",
    tag = "account",
    request_body(content((LocalLoginRequest = "application/json"), (LocalLoginForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "JSON: the new login token, with its value (shown once).", body = views::NewUiToken),
        (status = 303, description = "A form: on to `/me` with the session cookie, or to the reset form when the password must be reset."),
        (status = 400, description = "A missing or illegal field, or an unknown member.", body = ErrorEnvelope),
        (status = 401, description = "A wrong user name or password, or second-factor code.", body = ErrorEnvelope),
        (status = 403, description = "A disabled account, login restricted to administrators, or (JSON) a password that must be reset.", body = ErrorEnvelope),
    ),
)]
pub async fn login(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    let (user, password, stay_logged_in, custom, code) = match &input {
        Input::Form(form) => {
            let request: LocalLoginForm = form.read();
            let (user, password) = (request.user, request.pwd);
            if is_blank(user.as_deref()) {
                return Err(missing("user"));
            }
            if is_blank(password.as_deref()) {
                return Err(missing("pwd"));
            }
            let custom = parse_context_string(request.customcontext.as_deref())?;
            (user, password, request.stayloggedin.is_some(), custom, request.second_factor_token)
        }
        Input::Json(json) => {
            let request: LocalLoginRequest = json.read()?;
            let (user, password) = (request.user, request.pwd);
            if is_blank(user.as_deref()) {
                return Err(missing("user"));
            }
            if is_blank(password.as_deref()) {
                return Err(missing("pwd"));
            }
            let stay = request.stayloggedin.unwrap_or(false);
            (user, password, stay, request.customcontext.unwrap_or_default(), request.second_factor_token)
        }
    };
    let custom = parse_custom_context(&custom)?;
    let name = UserName::parse(user.as_deref())?;
    let metadata = context.metadata(&name);
    let login = PasswordLogin {
        user: name.clone(),
        password: password.unwrap_or_default(),
        second_factor: code,
        custom,
        client: context.client_info(),
        from: context.password_client(),
    };
    let (value, view, marks) = match accounts::log_in(&state.ledger, login, &metadata).await? {
        LoginOutcome::MustReset if input.is_form() => {
            let target = format!("/localaccount/reset?user={name}");
            return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response());
        }
        LoginOutcome::MustReset => {
            return Err(AuthError::unauthorized(format!(
                "User {name} must reset their password at /localaccount/reset before logging in"
            ))
            .into());
        }
        LoginOutcome::LoggedIn { value, token, device_marks } => (value, *token, device_marks),
    };
    // Appended: a response may set several cookies.
    let marks = (header::SET_COOKIE, device_cookie(&marks));
    if input.is_form() {
        let max_age = stay_logged_in.then(|| ((view.expires - state.now()) / 1000).clamp(0, i64::from(i32::MAX)));
        let cookie = session_cookie(&value, max_age);
        let headers = AppendHeaders([(header::LOCATION, "/me".to_owned()), (header::SET_COOKIE, cookie), marks]);
        return Ok((StatusCode::SEE_OTHER, headers).into_response());
    }
    Ok((AppendHeaders([marks]), Json(views::NewUiToken::of(&view, &value))).into_response())
}

/// Changes a local account's password (with the current one).
#[utoipa::path(
    post,
    path = "/localaccount/reset",
    operation_id = "local_reset",
    tag = "account",
    request_body(content((LocalResetRequest = "application/json"), (LocalResetRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "JSON: changed."),
        (status = 303, description = "A form: changed; on to the login form, the session cookie removed."),
        (status = 400, description = "A missing field, an illegal new password, or an unknown member.", body = ErrorEnvelope),
        (status = 401, description = "A wrong user name or password, or second-factor code.", body = ErrorEnvelope),
        (status = 403, description = "A disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn reset(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    let request: LocalResetRequest = input.read()?;
    for (field, value) in [("user", &request.user), ("pwdold", &request.pwdold), ("pwdnew", &request.pwdnew)] {
        if is_blank(value.as_deref()) {
            return Err(missing(field));
        }
    }
    let name = UserName::parse(request.user.as_deref())?;
    let old = request.pwdold.unwrap_or_default();
    let new = request.pwdnew.unwrap_or_default();
    // The password rules answer before the code's type (the contract's order).
    let change = PasswordChange::new(old, new)?;
    let metadata = context.metadata(&name);
    let code = request.second_factor_token?;
    let from = context.password_client();
    accounts::change_password(&state.ledger, &name, change, code.as_deref(), &from, &metadata).await?;
    if input.is_form() {
        let headers =
            [(header::LOCATION, "/localaccount/login".to_owned()), (header::SET_COOKIE, removed_session_cookie())];
        return Ok((StatusCode::SEE_OTHER, headers).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login_page, login)).routes(routes!(reset_page, reset))
}
