//! Sign-up invitations: an admin invites a user name (with logins and
//! identities); the invitee opens `/web/newuser/{token}`, is shown a fresh TOTP
//! enrolment, and completes the invitation with a password and a code — which
//! creates the account, spends the invitation and starts a session, even when
//! non-admin login is off (the invitation is an admin's explicit grant).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::caller::administrator;
use super::error::{ApiError, ErrorEnvelope, wants_html};
use super::openapi::{Access, behind};
use super::pages;
use super::permissions::{self, Action};
use super::request::{Body, Form, FormBody, JsonBody, JsonObject, RequestContext, session_cookie};
use crate::app::invitations::{self, Completed, Completion, InviteRequest, Opened};
use crate::domain::invite::MAX_INVITE_TTL_MS;
use crate::domain::{AuthError, InvitedIdentity, Login, UserName};
use crate::projections::access::InviteRecord;

/// Members of `POST /api/V2/admin/invites`'s body.
#[derive(ToSchema)]
pub struct IssueInviteRequest {
    /// The user name the invitation is for.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The logins the user's SSH certificates will carry (Admin only); the user name by default.
    logins: Option<Vec<String>>,
    /// Provider identities (`connector:email`) to link to the new account.
    identities: Option<Vec<String>>,
    /// How long the invitation is valid, in seconds.
    ttl: Option<i64>,
}

impl JsonBody for IssueInviteRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            user: json.string("user")?,
            logins: json.strings("logins")?,
            identities: json.strings("identities")?,
            ttl: json.integer("ttl")?,
        })
    }
}

/// A new invitation, with its token (shown once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedInvite {
    /// The invitation's token.
    pub token: String,
    /// The page the invitee opens.
    pub url: String,
    /// Epoch milliseconds.
    pub expires: i64,
    pub id: Uuid,
    #[schema(value_type = String)]
    pub user: UserName,
}

/// Invites a user name to sign up.
#[utoipa::path(
    post,
    path = "/api/V2/admin/invites",
    operation_id = "issue_invite",
    tag = "invites",
    request_body = IssueInviteRequest,
    responses(
        (status = 200, description = "The invitation, with its token and URL.", body = IssuedInvite),
        (status = 400, description = "An illegal or taken user name, an illegal login, identity or ttl, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to invite, or to name logins.", body = ErrorEnvelope),
    ),
)]
pub async fn issue(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<IssuedInvite>, ApiError> {
    let invite: IssueInviteRequest = body.read()?;
    let user = UserName::parse(invite.user.as_deref())?;
    let request = InviteRequest::new(user)?.with_logins(invite.logins)?;
    let identities: BTreeSet<InvitedIdentity> =
        invite.identities.unwrap_or_default().iter().map(|i| InvitedIdentity::parse(i)).collect::<Result<_, _>>()?;
    let ttl_seconds = invite.ttl.unwrap_or(MAX_INVITE_TTL_MS / 1000);
    let request = request.with_identities(identities).valid_for(ttl_seconds)?;
    let caller = administrator(&state, &context, Action::InviteUser)?;
    // Logins are what SSH certificates will carry: naming them is an Admin's call,
    // as it is for an existing user (`POST /admin/user/{u}/logins`).
    if request.names_logins && !permissions::allows(Action::ChangeLogins, &caller.user.roles) {
        return Err(AuthError::unauthorized("Only an Admin may set the logins of an invitation").into());
    }
    let issued = invitations::issue(&state.ledger, request, &caller.acting(&context)).await?;
    let url = format!("{}/web/newuser/{}", state.public_url, issued.token);
    Ok(Json(IssuedInvite { token: issued.token, url, expires: issued.expires, id: issued.id, user: issued.user }))
}

/// A pending invitation (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub user: UserName,
    /// The logins the user's SSH certificates will carry.
    #[schema(value_type = Vec<String>)]
    pub logins: BTreeSet<Login>,
    /// Provider identities (`connector:email`) to link to the new account.
    pub identities: Vec<String>,
    /// Epoch milliseconds.
    pub expires: i64,
    /// Epoch milliseconds.
    pub created: i64,
    #[schema(value_type = String)]
    pub issued_by: UserName,
}

impl InviteView {
    fn of(invite: &InviteRecord) -> Self {
        Self {
            id: invite.id,
            user: invite.user.clone(),
            logins: invite.logins.clone(),
            identities: invite.identities.iter().map(ToString::to_string).collect(),
            expires: invite.expires,
            created: invite.created,
            issued_by: invite.issued_by.clone(),
        }
    }
}

/// The pending invitations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Invites {
    pub invites: Vec<InviteView>,
}

/// Pending invitations (never their tokens).
#[utoipa::path(
    get,
    path = "/api/V2/admin/invites",
    operation_id = "list_invites",
    tag = "invites",
    responses(
        (status = 200, description = "The pending invitations.", body = Invites),
        (status = 403, description = "Not allowed to invite.", body = ErrorEnvelope),
    ),
)]
pub async fn list(State(state): State<AppState>, context: RequestContext) -> Result<Json<Invites>, ApiError> {
    administrator(&state, &context, Action::InviteUser)?;
    let invites = state.ledger.pending_invites().iter().map(InviteView::of).collect();
    Ok(Json(Invites { invites }))
}

/// Revokes a pending invitation.
#[utoipa::path(
    delete,
    path = "/api/V2/admin/invites/{id}",
    operation_id = "revoke_invite",
    tag = "invites",
    params(("id" = String, Path, description = "The invitation's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Not allowed to invite.", body = ErrorEnvelope),
        (status = 404, description = "No such pending invitation.", body = ErrorEnvelope),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::InviteUser)?;
    invitations::revoke(&state.ledger, &id, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the invitation can be used, without offering a new secret (link checkers probe with HEAD).
#[utoipa::path(
    head,
    path = "/web/newuser/{token}",
    operation_id = "probe_invite",
    tag = "invites",
    params(("token" = String, Path, description = "The invitation's token.")),
    responses(
        (status = 200, description = "The invitation can be used."),
        (status = 401, description = "An unknown, used or expired invitation."),
    ),
)]
pub async fn probe(State(state): State<AppState>, Path(token): Path<String>) -> Result<StatusCode, ApiError> {
    invitations::pending(&state.ledger, &token)?;
    Ok(StatusCode::OK)
}

/// The second factor an invitation offers: a TOTP enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Always `totp`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The `otpauth://` URI an authenticator app takes.
    pub otpauth_uri: String,
    /// The URI as a QR code (a base64 PNG).
    pub qr_png_base64: String,
}

/// An opened invitation: whom it is for and a fresh second-factor enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenedInvite {
    #[schema(value_type = String)]
    pub user: UserName,
    /// The logins the user's SSH certificates will carry.
    #[schema(value_type = Vec<String>)]
    pub logins: BTreeSet<Login>,
    /// Epoch milliseconds.
    pub expires: i64,
    pub second_factor: TotpEnrolment,
    /// Where to post the completion (`/api/V2/invites/complete`).
    pub complete: &'static str,
}

/// The invitation's user and a fresh TOTP enrolment.
///
/// HTML with a QR code and the completion form for a browser, JSON otherwise.
/// Each opening offers a new secret (earlier offers become void).
#[utoipa::path(
    get,
    path = "/web/newuser/{token}",
    operation_id = "open_invite",
    tag = "invites",
    params(("token" = String, Path, description = "The invitation's token.")),
    responses(
        (status = 200, description = "The invitation and its enrolment.",
            headers(("Cache-Control" = String, description = "`no-store` (JSON).")),
            content((OpenedInvite = "application/json"), (String = "text/html"))),
        (status = 401, description = "An unknown, used or expired invitation.", body = ErrorEnvelope),
    ),
)]
pub async fn open(
    State(state): State<AppState>,
    context: RequestContext,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let metadata = context.anonymous_metadata();
    let Opened { invite, enrolment } = invitations::open(&state.ledger, &token, metadata).await?;
    if !wants_html(&context.headers) {
        let body = OpenedInvite {
            user: invite.user,
            logins: invite.logins,
            expires: invite.expires,
            second_factor: TotpEnrolment {
                kind: "totp",
                otpauth_uri: enrolment.uri,
                qr_png_base64: enrolment.qr_png_base64,
            },
            complete: "/api/V2/invites/complete",
        };
        return Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response());
    }
    pages::account::invitation(invite.user.as_str(), &enrolment.uri, &enrolment.qr_png_base64, &token)
}

/// Members of `POST /api/V2/invites/complete`'s body.
#[derive(ToSchema)]
pub struct CompleteInviteRequest {
    /// The invitation's token.
    #[schema(value_type = String, required)]
    invite_token: Option<String>,
    /// The new account's password.
    #[schema(value_type = String, required)]
    pass: Option<String>,
    /// A code from the authenticator enrolled when the invitation was opened.
    #[schema(value_type = String, required)]
    second_factor_token: Option<String>,
}

impl JsonBody for CompleteInviteRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            invite_token: json.string("invite_token")?,
            pass: json.string("pass")?,
            second_factor_token: json.string("second_factor_token")?,
        })
    }
}

impl FormBody for CompleteInviteRequest {
    fn from_form(form: &Form) -> Self {
        Self {
            invite_token: form.text("invite_token"),
            pass: form.text("pass"),
            second_factor_token: form.text("second_factor_token"),
        }
    }
}

/// The new account's first session.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteSession {
    /// Always `bearer`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The session's login token (also set as the session cookie).
    pub token: String,
    #[schema(value_type = String)]
    pub user: UserName,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Completes an invitation: creates the account, spends the invitation and starts a session.
#[utoipa::path(
    post,
    path = "/api/V2/invites/complete",
    operation_id = "complete_invite",
    tag = "invites",
    request_body(content(
        (CompleteInviteRequest = "application/json"),
        (CompleteInviteRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The account exists and the session started (a JSON request).",
            headers(("Set-Cookie" = String, description = "The session cookie.")),
            body = InviteSession),
        (status = 303, description = "The account exists and the session started (a form): on to `/me`.",
            headers(
                ("Location" = String, description = "`/me`."),
                ("Set-Cookie" = String, description = "The session cookie."),
            )),
        (status = 400, description = "A missing member, a weak password, or an unknown member.", body = ErrorEnvelope),
        (status = 401, description = "An unknown, used or expired invitation, or a wrong code.", body = ErrorEnvelope),
    ),
)]
pub async fn complete(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    let request: CompleteInviteRequest = input.read()?;
    let token = request.invite_token.ok_or_else(|| AuthError::missing("invite_token"))?;
    let password = request.pass.filter(|p| !p.is_empty()).ok_or_else(|| AuthError::missing("pass"))?;
    let code = request.second_factor_token.ok_or_else(|| AuthError::missing("second_factor_token"))?;
    let completion = Completion { token, password, second_factor: code, client: context.client_info() };
    let metadata = context.anonymous_metadata();
    let Completed { user, value, token: view } = invitations::complete(&state.ledger, completion, metadata).await?;
    let expires_in = ((view.expires - state.now()) / 1000).max(0);
    let cookie = session_cookie(&value, Some(expires_in.min(i64::from(i32::MAX))));
    if input.is_form() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/me".to_owned()), (header::SET_COOKIE, cookie)])
            .into_response());
    }
    let body = InviteSession { kind: "bearer", token: value, user, expires_in };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    let admin = OpenApiRouter::new().routes(routes!(list, issue)).routes(routes!(revoke));
    OpenApiRouter::new()
        .routes(routes!(open, probe))
        .routes(routes!(complete))
        .merge(behind(Access::TokenOrSession, admin))
}
