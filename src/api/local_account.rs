//! Local accounts: password login and password change (contract §9 and the
//! upstream `LocalAccounts` resource). Each takes a form (the browser flow:
//! 303 redirects and the session cookie) or a JSON body (scripts: the token
//! in the answer).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::pages::{self, Nav};
use super::request::FirstQuery;
use super::request::{Body, Input, RequestContext, parse_context_string, removed_session_cookie, session_cookie};
use super::{AppState, views};
use crate::app::accounts::{self, LoginOutcome, PasswordChange, PasswordLogin};
use crate::domain::names::{is_blank, parse_custom_context};
use crate::domain::{AuthError, UserName};

/// `?user=` of the two local-account pages (prefills the form).
#[derive(Debug, serde::Deserialize)]
pub struct UserQuery {
    user: Option<String>,
}

/// `GET /localaccount/login`: the login form.
pub async fn login_page(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<UserQuery>,
) -> Result<Response, ApiError> {
    pages::account::login(Nav::from_cookie(&state, &context.headers), query.user.as_deref())
}

/// `GET /localaccount/reset?user=`: the password-change form.
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

pub async fn login(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    let (user, password, stay_logged_in, custom) = match &input {
        Input::Form(form) => {
            let user = form.get("user").map(str::to_owned);
            let password = form.get("pwd").map(str::to_owned);
            if is_blank(user.as_deref()) {
                return Err(missing("user"));
            }
            if is_blank(password.as_deref()) {
                return Err(missing("pwd"));
            }
            (user, password, form.has("stayloggedin"), parse_context_string(form.get("customcontext"))?)
        }
        Input::Json(json) => {
            json.reject_unexpected(&["user", "pwd", "stayloggedin", "customcontext", "second_factor_token"])?;
            let user = json.string("user")?;
            let password = json.string("pwd")?;
            if is_blank(user.as_deref()) {
                return Err(missing("user"));
            }
            if is_blank(password.as_deref()) {
                return Err(missing("pwd"));
            }
            let stay = json.boolean("stayloggedin")?.unwrap_or(false);
            (user, password, stay, json.string_map("customcontext")?.unwrap_or_default())
        }
    };
    let custom = parse_custom_context(&custom)?;
    let name = UserName::parse(user.as_deref())?;
    let code = input.string("second_factor_token")?;
    let ignore_ip = state.ignore_ip();
    let metadata = context.metadata(&name, ignore_ip);
    let login = PasswordLogin {
        user: name.clone(),
        password: password.unwrap_or_default(),
        second_factor: code,
        custom,
        client: context.client_info(ignore_ip),
        from: context.quota_key(),
    };
    let (value, view) = match accounts::log_in(&state.ledger, login, &metadata).await? {
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
        LoginOutcome::LoggedIn { value, token } => (value, *token),
    };
    if input.is_form() {
        let max_age = stay_logged_in.then(|| ((view.expires - state.now()) / 1000).clamp(0, i64::from(i32::MAX)));
        let cookie = session_cookie(&value, max_age);
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/me".to_owned()), (header::SET_COOKIE, cookie)])
            .into_response());
    }
    Ok(Json(views::new_ui_token(&view, &value)).into_response())
}

pub async fn reset(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["user", "pwdold", "pwdnew", "second_factor_token"])?;
    let fields: BTreeMap<&str, Option<String>> =
        [("user", input.string("user")?), ("pwdold", input.string("pwdold")?), ("pwdnew", input.string("pwdnew")?)]
            .into();
    for field in ["user", "pwdold", "pwdnew"] {
        if is_blank(fields[field].as_deref()) {
            return Err(missing(field));
        }
    }
    let name = UserName::parse(fields["user"].as_deref())?;
    let old = fields["pwdold"].clone().unwrap_or_default();
    let new = fields["pwdnew"].clone().unwrap_or_default();
    // The password rules answer before the code's type (the contract's order).
    let change = PasswordChange::new(old, new)?;
    let metadata = context.metadata(&name, state.ignore_ip());
    let code = input.string("second_factor_token")?;
    accounts::change_password(&state.ledger, &name, change, code.as_deref(), &context.quota_key(), &metadata).await?;
    if input.is_form() {
        let headers =
            [(header::LOCATION, "/localaccount/login".to_owned()), (header::SET_COOKIE, removed_session_cookie())];
        return Ok((StatusCode::SEE_OTHER, headers).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
