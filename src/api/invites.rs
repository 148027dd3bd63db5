//! Sign-up invitations: an admin invites a user name (with logins and
//! identities); the invitee opens `/web/newuser/{token}`, is shown a fresh TOTP
//! enrolment, and completes the invitation with a password and a code — which
//! creates the account, spends the invitation and starts a session, even when
//! non-admin login is off (the invitation is an admin's explicit grant).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rand::RngCore;
use serde_json::{Value, json};
use uuid::Uuid;

use super::admin::administrator;
use super::error::{ApiError, escape_html, prefers_json};
use super::permissions::{self, Action};
use super::request::{Body, RequestContext, session_cookie};
use super::{AppState, NewToken};
use crate::access::second_factor;
use crate::domain::invite::{MAX_INVITE_TTL_MS, unusable};
use crate::domain::user::{Invitation, NewPassword};
use crate::domain::{
    AuthError, DisplayName, ErrorType, Identity, InviteCommand, Login, TokenKind, UserCommand, UserName,
};
use crate::passwords;
use crate::projections::access::InviteRecord;
use crate::projections::hash_token;
use crate::projections::token_index::encode_hash;

/// `POST /api/V2/admin/invites` `{"user", "logins"?, "identities"?, "ttl"?}` → `{"token", "url", "expires", "id"}`.
pub async fn issue(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["user", "logins", "identities", "ttl"])?;
    let user = UserName::parse(json.string("user")?.as_deref())?;
    if user.is_root() {
        return Err(AuthError::illegal("The root account cannot be invited").into());
    }
    let named_logins = json.strings("logins")?;
    let logins = match &named_logins {
        None => Login::parse_list([user.as_str()])?,
        Some(listed) => Login::parse_list(listed.iter().map(String::as_str))?,
    };
    let identities: BTreeSet<Identity> =
        json.strings("identities")?.unwrap_or_default().iter().map(|i| Identity::parse(i)).collect::<Result<_, _>>()?;
    let ttl = json.integer("ttl")?.unwrap_or(MAX_INVITE_TTL_MS / 1000);
    if !(1..=MAX_INVITE_TTL_MS / 1000).contains(&ttl) {
        return Err(
            AuthError::illegal(format!("ttl must be between 1 and {} seconds", MAX_INVITE_TTL_MS / 1000)).into()
        );
    }
    let caller = administrator(&state, &context, Action::InviteUser)?;
    // Logins are what SSH certificates will carry: naming them is an Admin's call,
    // as it is for an existing user (`POST /admin/user/{u}/logins`).
    if named_logins.is_some() && !permissions::allows(Action::ChangeLogins, &caller.user.roles) {
        return Err(AuthError::unauthorized("Only an Admin may set the logins of an invitation").into());
    }
    if state.ledger.model.read().users.get(&user).is_some() {
        return Err(AuthError::new(ErrorType::UserAlreadyExists, user.as_str()).into());
    }
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let token = data_encoding::HEXLOWER.encode(&secret);
    let id = Uuid::new_v4();
    let now = state.now();
    let expires = now.saturating_add(ttl * 1000);
    let command = InviteCommand::Issue {
        token_hash: encode_hash(&hash_token(&token)),
        user: user.clone(),
        logins,
        identities,
        expires,
        issued_by: caller.name().clone(),
        at: now,
    };
    state.ledger.invite(id, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    let url = format!("{}/web/newuser/{token}", state.access.public_url);
    Ok(Json(json!({ "token": token, "url": url, "expires": expires, "id": id, "user": user })))
}

fn invite_json(invite: &InviteRecord) -> Value {
    let identities: Vec<String> = invite.identities.iter().map(ToString::to_string).collect();
    json!({
        "id": invite.id, "user": invite.user, "logins": invite.logins, "identities": identities,
        "expires": invite.expires, "created": invite.created, "issued_by": invite.issued_by,
    })
}

/// `GET /api/V2/admin/invites`: pending invitations (never their tokens).
pub async fn list(State(state): State<AppState>, context: RequestContext) -> Result<Json<Value>, ApiError> {
    administrator(&state, &context, Action::InviteUser)?;
    let model = state.ledger.model.read();
    let invites: Vec<Value> = model.access.invites(state.now()).into_iter().map(invite_json).collect();
    Ok(Json(json!({ "invites": invites })))
}

/// `DELETE /api/V2/admin/invites/{id}`.
pub async fn revoke(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::InviteUser)?;
    let no_such = || AuthError::new(ErrorType::NoSuchToken, format!("no such pending invitation {id}"));
    let id = Uuid::parse_str(&id).map_err(|_| no_such())?;
    let Some(offered) = state.ledger.model.read().access.invite_by_id(&id).map(|i| i.offered) else {
        return Err(no_such().into());
    };
    let command = InviteCommand::Revoke { by: caller.name().clone(), at: state.now() };
    state.ledger.invite(id, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    if let Some(secret) = offered {
        let _ = state.ledger.log.delete_secret(secret).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn pending(state: &AppState, token: &str) -> Result<InviteRecord, ApiError> {
    let hash = encode_hash(&hash_token(token.trim()));
    state.ledger.model.read().access.invite(&hash, state.now()).cloned().ok_or_else(|| unusable().into())
}

/// `HEAD /web/newuser/{token}`: whether the invitation can be used — without
/// offering a new secret (link checkers probe with HEAD).
pub async fn probe(State(state): State<AppState>, Path(token): Path<String>) -> Result<StatusCode, ApiError> {
    pending(&state, &token).map(|_| StatusCode::OK)
}

/// `GET /web/newuser/{token}`: the invitation's user and a fresh TOTP enrolment
/// (HTML with a QR code and the completion form, or JSON when asked for).
pub async fn open(
    State(state): State<AppState>,
    context: RequestContext,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let invite = pending(&state, &token)?;
    let secret = second_factor::new_secret();
    let enrolment = second_factor::enrolment(&secret, invite.user.as_str())?;
    let credential_id = Uuid::new_v4();
    let now = state.now();
    state
        .ledger
        .log
        .put_secret(credential_id, second_factor::SECRET_KIND, &secret, now)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let metadata = context.metadata_of(&format!("invitee:{}", invite.user), state.ignore_ip());
    if let Err(error) =
        state.ledger.invite(invite.id, InviteCommand::OfferSecondFactor { credential_id, at: now }, &metadata).await
    {
        let _ = state.ledger.log.delete_secret(credential_id).await;
        return Err(error.into());
    }
    if let Some(previous) = invite.offered {
        let _ = state.ledger.log.delete_secret(previous).await;
    }
    if prefers_json(&context.headers) {
        return Ok(([(header::CACHE_CONTROL, "no-store")], Json(json!({
            "user": invite.user,
            "logins": invite.logins,
            "expires": invite.expires,
            "second_factor": { "type": "totp", "otpauth_uri": enrolment.uri, "qr_png_base64": enrolment.qr_png_base64 },
            "complete": "/api/V2/invites/complete",
        })))
            .into_response());
    }
    let user = escape_html(invite.user.as_str());
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Welcome, {user}</title></head>\n<body>\n\
         <h1>Create the account {user}</h1>\n\
         <p>Scan this code with an authenticator app (TOTP), or enter <code>{uri}</code>.</p>\n\
         <img alt=\"TOTP QR code\" src=\"data:image/png;base64,{qr}\">\n\
         <form method=\"post\" action=\"/api/V2/invites/complete\">\n\
         <input type=\"hidden\" name=\"invite_token\" value=\"{token}\">\n\
         <label>Password <input type=\"password\" name=\"pass\" autocomplete=\"new-password\"></label>\n\
         <label>Code <input name=\"second_factor_token\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\n\
         <button type=\"submit\">Create account</button>\n</form>\n</body>\n</html>\n",
        uri = escape_html(&enrolment.uri),
        qr = enrolment.qr_png_base64,
        token = escape_html(&token),
    );
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}

/// `POST /api/V2/invites/complete` `{"invite_token", "pass", "second_factor_token"}`:
/// creates the account, spends the invitation and starts a session.
pub async fn complete(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["invite_token", "pass", "second_factor_token"])?;
    let token = input.string("invite_token")?.ok_or_else(|| AuthError::missing("invite_token"))?;
    let password = input.string("pass")?.filter(|p| !p.is_empty()).ok_or_else(|| AuthError::missing("pass"))?;
    let code = input.string("second_factor_token")?.ok_or_else(|| AuthError::missing("second_factor_token"))?;
    let invite = pending(&state, &token)?;
    passwords::check_strength(&password)?;
    let offered = invite.offered.ok_or_else(|| {
        AuthError::new(ErrorType::AuthenticationFailed, "open the invitation first to enrol a second factor")
    })?;
    let secret = state
        .ledger
        .log
        .get_secret(offered)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| AuthError::new(ErrorType::AuthenticationFailed, "open the invitation again"))?;
    let now = state.now();
    let Some(step) = second_factor::check(&secret, invite.user.as_str(), &code, now)? else {
        return Err(AuthError::new(ErrorType::AuthenticationFailed, "wrong second-factor code").into());
    };
    if state.ledger.model.read().users.get(&invite.user).is_some() {
        return Err(AuthError::new(ErrorType::UserAlreadyExists, invite.user.as_str()).into());
    }
    let display = DisplayName::parse(Some(invite.user.as_str()))?;
    let credential_id = passwords::store(&state.ledger.log, password, now).await.map_err(ApiError::internal)?;
    let metadata = context.metadata_of(invite.user.as_str(), state.ignore_ip());
    // Spending the invitation first makes it single use even against a racing completion.
    if let Err(error) =
        state.ledger.invite(invite.id, InviteCommand::Redeem { credential_id: offered, at: now }, &metadata).await
    {
        let _ = state.ledger.log.delete_secret(credential_id).await;
        return Err(error.into());
    }
    let invitation = Invitation {
        invite: invite.id,
        invited_by: invite.issued_by.clone(),
        user: invite.user.clone(),
        display,
        anon_id: Uuid::new_v4(),
        logins: invite.logins.clone(),
        identities: invite.identities.clone(),
        password: NewPassword { credential_id, require_reset: false, by: invite.user.clone(), at: now },
        second_factor: offered,
        at: now,
    };
    // Only a name taken since the checks above (or a failing store) ends here; the
    // invitation is spent either way, since its name cannot be created any more.
    if let Err(error) =
        state.ledger.user(&invite.user, UserCommand::AcceptInvitation(Box::new(invitation)), &metadata).await
    {
        let _ = state.ledger.log.delete_secret(credential_id).await;
        return Err(error.into());
    }
    // The code just used counts as used: it cannot log in again.
    state.ledger.user(&invite.user, UserCommand::VerifySecondFactor { step: Some(step), at: now }, &metadata).await?;
    let ignore_ip = state.ignore_ip();
    let grant = NewToken {
        user: invite.user.clone(),
        kind: TokenKind::Login,
        name: None,
        custom: Default::default(),
        client: context.client_info(ignore_ip),
    };
    let (value, view) = state.issue_token(grant, &metadata).await?;
    state.ledger.user(&invite.user, UserCommand::RecordLogin { at: view.created }, &metadata).await?;
    let expires_in = ((view.expires - state.now()) / 1000).max(0);
    let cookie = session_cookie(&value, Some(expires_in.min(i64::from(i32::MAX))));
    if input.is_form() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/me".to_owned()), (header::SET_COOKIE, cookie)])
            .into_response());
    }
    let body = json!({ "type": "bearer", "token": value, "user": invite.user, "expires_in": expires_in });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}
