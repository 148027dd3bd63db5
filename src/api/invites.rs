//! Sign-up invitations: an admin invites a user name (with logins and
//! identities); the invitee opens `/web/newuser/{token}`, is shown a fresh TOTP
//! enrolment, and completes the invitation with a password and a code — which
//! creates the account, spends the invitation and starts a session, even when
//! non-admin login is off (the invitation is an admin's explicit grant).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::admin::administrator;
use super::error::{ApiError, wants_html};
use super::pages;
use super::permissions::{self, Action};
use super::request::{Body, RequestContext, session_cookie};
use crate::app::invitations::{self, Completed, Completion, InviteRequest, Opened};
use crate::domain::invite::MAX_INVITE_TTL_MS;
use crate::domain::{AuthError, InvitedIdentity, UserName};
use crate::projections::access::InviteRecord;

/// `POST /api/V2/admin/invites` `{"user", "logins"?, "identities"?, "ttl"?}` → `{"token", "url", "expires", "id"}`.
pub async fn issue(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["user", "logins", "identities", "ttl"])?;
    let user = UserName::parse(json.string("user")?.as_deref())?;
    let request = InviteRequest::new(user)?.with_logins(json.strings("logins")?)?;
    let identities: BTreeSet<InvitedIdentity> = json
        .strings("identities")?
        .unwrap_or_default()
        .iter()
        .map(|i| InvitedIdentity::parse(i))
        .collect::<Result<_, _>>()?;
    let ttl_seconds = json.integer("ttl")?.unwrap_or(MAX_INVITE_TTL_MS / 1000);
    let request = request.with_identities(identities).valid_for(ttl_seconds)?;
    let caller = administrator(&state, &context, Action::InviteUser)?;
    // Logins are what SSH certificates will carry: naming them is an Admin's call,
    // as it is for an existing user (`POST /admin/user/{u}/logins`).
    if request.names_logins && !permissions::allows(Action::ChangeLogins, &caller.user.roles) {
        return Err(AuthError::unauthorized("Only an Admin may set the logins of an invitation").into());
    }
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    let issued = invitations::issue(&state.ledger, request, caller.name(), &metadata).await?;
    let url = format!("{}/web/newuser/{}", state.ssh.public_url, issued.token);
    Ok(Json(json!({
        "token": issued.token, "url": url, "expires": issued.expires, "id": issued.id, "user": issued.user,
    })))
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
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    invitations::revoke(&state.ledger, &id, caller.name(), &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `HEAD /web/newuser/{token}`: whether the invitation can be used — without
/// offering a new secret (link checkers probe with HEAD).
pub async fn probe(State(state): State<AppState>, Path(token): Path<String>) -> Result<StatusCode, ApiError> {
    invitations::pending(&state.ledger, &token)?;
    Ok(StatusCode::OK)
}

/// `GET /web/newuser/{token}`: the invitation's user and a fresh TOTP enrolment
/// (HTML with a QR code and the completion form, or JSON when asked for).
pub async fn open(
    State(state): State<AppState>,
    context: RequestContext,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let metadata = context.anonymous_metadata(state.ignore_ip());
    let Opened { invite, enrolment } = invitations::open(&state.ledger, &token, metadata).await?;
    if !wants_html(&context.headers) {
        return Ok(([(header::CACHE_CONTROL, "no-store")], Json(json!({
            "user": invite.user,
            "logins": invite.logins,
            "expires": invite.expires,
            "second_factor": { "type": "totp", "otpauth_uri": enrolment.uri, "qr_png_base64": enrolment.qr_png_base64 },
            "complete": "/api/V2/invites/complete",
        })))
            .into_response());
    }
    pages::account::invitation(invite.user.as_str(), &enrolment.uri, &enrolment.qr_png_base64, &token)
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
    let ignore_ip = state.ignore_ip();
    let completion = Completion { token, password, second_factor: code, client: context.client_info(ignore_ip) };
    let metadata = context.anonymous_metadata(ignore_ip);
    let Completed { user, value, token: view } = invitations::complete(&state.ledger, completion, metadata).await?;
    let expires_in = ((view.expires - state.now()) / 1000).max(0);
    let cookie = session_cookie(&value, Some(expires_in.min(i64::from(i32::MAX))));
    if input.is_form() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/me".to_owned()), (header::SET_COOKIE, cookie)])
            .into_response());
    }
    let body = json!({ "type": "bearer", "token": value, "user": user, "expires_in": expires_in });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}
