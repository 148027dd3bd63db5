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
use super::request::{Body, Input, RequestContext, parse_context_string, removed_session_cookie, session_cookie};
use super::{AppState, NewToken, views};
use crate::access::second_factor;
use crate::domain::names::{is_blank, parse_custom_context};
use crate::domain::user::NewPassword;
use crate::domain::user::locked;
use crate::domain::{AuthError, ErrorType, RoleSet, TokenKind, UserCommand, UserName};
use crate::passwords;
use crate::projections::UserRecord;
use crate::store::EventMetadata;

/// Checks a local user's password, then whether they may log in now
/// (upstream `getLocalUser`: password, non-admin login switch, disabled).
/// A locked account is refused first, whatever the password, so a lock is no
/// oracle for password guesses. The second factor is checked separately
/// ([`verify_second_factor`]), after the caller's own checks.
pub async fn verify_local_user(state: &AppState, name: &UserName, password: &str) -> Result<UserRecord, ApiError> {
    let record = state.ledger.model.read().users.get(name).cloned();
    if let Some(until) = record.as_ref().and_then(|r| r.locked_until).filter(|until| state.now() < *until) {
        return Err(locked(until).into());
    }
    let stored = match record.as_ref().and_then(|r| r.credential) {
        Some(id) => state.ledger.log.get_secret(id).await.map_err(|e| ApiError::internal(e.to_string()))?,
        None => None,
    };
    let matched = passwords::verify(password.to_owned(), stored).await;
    let record = match (matched, record) {
        (true, Some(record)) => record,
        _ => return Err(AuthError::new(ErrorType::PasswordMismatch, name.as_str()).into()),
    };
    let allow_login = state.ledger.model.read().config.allow_login;
    if !allow_login && !record.roles.is_admin_like() {
        return Err(
            AuthError::unauthorized(format!("User {name} cannot log in because non-admin login is disabled")).into()
        );
    }
    if record.is_disabled() {
        return Err(AuthError::disabled(name.as_str()).into());
    }
    Ok(record)
}

/// For an account with a second factor, checks its TOTP code; every wrong code
/// is counted (an event on the user, so racing attempts are counted exactly),
/// and too many lock the account.
pub async fn verify_second_factor(
    state: &AppState,
    record: &UserRecord,
    code: Option<&str>,
    metadata: &EventMetadata,
) -> Result<(), ApiError> {
    let Some(credential) = record.second_factor else {
        return Ok(());
    };
    let now = state.now();
    if let Some(until) = record.locked_until.filter(|until| now < *until) {
        return Err(locked(until).into());
    }
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        return Err(AuthError::new(
            ErrorType::AuthenticationFailed,
            "this account has a second factor: second_factor_token is required",
        )
        .into());
    };
    let secret = state
        .ledger
        .log
        .get_secret(credential)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::internal("the second-factor secret is missing"))?;
    let step = second_factor::check(&secret, record.name.as_str(), code, now)?;
    state.ledger.user(&record.name, UserCommand::VerifySecondFactor { step, at: now }, metadata).await?;
    if step.is_none() {
        let locked_until = state.ledger.model.read().users.get(&record.name).and_then(|r| r.locked_until);
        return Err(match locked_until.filter(|until| now < *until) {
            Some(until) => locked(until),
            None => AuthError::new(ErrorType::AuthenticationFailed, "wrong second-factor code"),
        }
        .into());
    }
    Ok(())
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
    let record = verify_local_user(&state, &name, password.as_deref().unwrap_or_default()).await?;
    // A forced reset is answered before the code is used: the reset asks for it.
    if state.ledger.model.read().users.reset_required(&record) {
        if input.is_form() {
            let target = format!("/localaccount/reset?user={name}");
            return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response());
        }
        return Err(AuthError::unauthorized(format!(
            "User {name} must reset their password at /localaccount/reset before logging in"
        ))
        .into());
    }
    verify_second_factor(&state, &record, code.as_deref(), &metadata).await?;
    let grant = NewToken {
        user: name.clone(),
        kind: TokenKind::Login,
        name: None,
        custom,
        client: context.client_info(ignore_ip),
    };
    let (value, view) = state.issue_token(grant, &metadata).await?;
    state.ledger.user(&name, UserCommand::RecordLogin { at: view.created }, &metadata).await?;
    if input.is_form() {
        let max_age = stay_logged_in.then(|| ((view.expires - state.now()) / 1000).clamp(0, i64::from(i32::MAX)));
        let cookie = session_cookie(&value, max_age);
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/me".to_owned()), (header::SET_COOKIE, cookie)])
            .into_response());
    }
    Ok(Json(views::new_ui_token(&view, &value)).into_response())
}

/// Stores a new password hash and records the change; the old hash is forgotten.
pub async fn set_password(
    state: &AppState,
    user: &UserRecord,
    password: String,
    require_reset: bool,
    metadata: &crate::store::EventMetadata,
    by: &UserName,
) -> Result<(), ApiError> {
    let now = state.now();
    let credential_id = passwords::store(&state.ledger.log, password, now).await.map_err(ApiError::internal)?;
    let command = UserCommand::SetPassword(NewPassword { credential_id, require_reset, by: by.clone(), at: now });
    state.ledger.user(&user.name, command, metadata).await?;
    if let Some(old) = user.credential
        && let Err(error) = state.ledger.log.delete_secret(old).await
    {
        tracing::warn!(%error, user = %user.name, "could not forget a replaced password hash");
    }
    Ok(())
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
    if old == new {
        return Err(AuthError::new(ErrorType::IllegalPassword, "Old and new passwords are identical.").into());
    }
    passwords::check_strength(&new)?;
    let metadata = context.metadata(&name, state.ignore_ip());
    let code = input.string("second_factor_token")?;
    let record = verify_local_user(&state, &name, &old).await?;
    verify_second_factor(&state, &record, code.as_deref(), &metadata).await?;
    set_password(&state, &record, new, false, &metadata, &name).await?;
    if input.is_form() {
        let headers =
            [(header::LOCATION, "/localaccount/login".to_owned()), (header::SET_COOKIE, removed_session_cookie())];
        return Ok((StatusCode::SEE_OTHER, headers).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
