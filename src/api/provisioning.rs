//! Provisioning tokens and hosts joining with them: admins issue,
//! list and delete tokens; a host presents one with its public key and gets a
//! host certificate signed by the host CA. Static tokens from the
//! configuration file join any number of hosts; issued ones join one each.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::caller::administrator;
use super::error::{ApiError, ErrorEnvelope};
use super::openapi::{Access, behind};
use super::permissions::Action;
use super::request::{Body, JsonBody, JsonObject, RequestContext};
use crate::app::hosts::{self, JoinRequest};
use crate::app::ssh::authority;
use crate::domain::{AuthError, CaKind, HostId, HostRole, UserName};

/// The longest a provisioning token may live, and how long it lives when not said.
const MAX_TTL_SECONDS: i64 = 30 * 24 * 3600;
const DEFAULT_TTL_SECONDS: i64 = 30 * 60;
/// The most tokens one request may ask for.
const MAX_COUNT: i64 = 100;

fn roles_of(listed: Option<Vec<String>>, required: bool) -> Result<Option<BTreeSet<HostRole>>, ApiError> {
    match listed {
        None if required => Err(AuthError::missing("roles").into()),
        None => Ok(None),
        Some(listed) => Ok(Some(HostRole::parse_list(listed.iter().map(String::as_str))?)),
    }
}

/// Members of `POST /api/V2/admin/provisiontokens`'s body.
#[derive(ToSchema)]
pub struct IssueTokensRequest {
    /// The roles a host joining with the tokens may take: `node`, `proxy`, `auth`.
    #[schema(value_type = Vec<String>, required)]
    roles: Option<Vec<String>>,
    /// How long the tokens live, in seconds (1800 by default; at most 30 days).
    ttl: Option<i64>,
    /// How many tokens to issue (1 by default; at most 100).
    count: Option<i64>,
}

impl JsonBody for IssueTokensRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { roles: json.strings("roles")?, ttl: json.integer("ttl")?, count: json.integer("count")? })
    }
}

/// A new provisioning token, with its value (shown once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedTokenView {
    /// The token's value.
    pub token: String,
    pub id: Uuid,
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<HostRole>,
    /// Epoch milliseconds.
    pub expires: i64,
}

/// The tokens issued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedTokens {
    pub tokens: Vec<IssuedTokenView>,
    /// Epoch milliseconds.
    pub expires: i64,
    /// Seconds.
    pub ttl: i64,
    /// The cluster hosts join under; `null` when the trust pattern is explicit.
    pub cluster_name: Option<String>,
}

/// Issues provisioning tokens (Admin).
#[utoipa::path(
    post,
    path = "/api/V2/admin/provisiontokens",
    operation_id = "issue_provision_tokens",
    tag = "provisioning",
    request_body = IssueTokensRequest,
    responses(
        (status = 200, description = "The new tokens, with their values (shown once).", body = IssuedTokens),
        (status = 400, description = "Missing or unknown roles, an illegal ttl or count, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to manage provisioning tokens.", body = ErrorEnvelope),
    ),
)]
pub async fn issue(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<IssuedTokens>, ApiError> {
    let request: IssueTokensRequest = body.read()?;
    let roles = roles_of(request.roles, true)?.unwrap_or_default();
    let ttl = request.ttl.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(AuthError::illegal(format!("ttl must be between 1 and {MAX_TTL_SECONDS} seconds")).into());
    }
    let count = request.count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(AuthError::illegal(format!("count must be between 1 and {MAX_COUNT}")).into());
    }
    let caller = administrator(&state, &context, Action::ManageProvisionTokens)?;
    let expires = state.now().saturating_add(ttl * 1000);
    let count = usize::try_from(count).unwrap_or(1);
    let issued = hosts::issue_tokens(&state.ledger, &caller.acting(&context), &roles, expires, count).await?;
    let tokens = issued
        .into_iter()
        .map(|t| IssuedTokenView { token: t.value, id: t.id, roles: roles.clone(), expires })
        .collect();
    // Hosts join under names inside the cluster (unless the trust pattern is explicit).
    let cluster = state.ssh.options.known_hosts_pattern.is_none().then(|| state.ssh.options.cluster_name.clone());
    Ok(Json(IssuedTokens { tokens, expires, ttl, cluster_name: cluster }))
}

/// A pending provisioning token (never its value).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingToken {
    pub id: Uuid,
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<HostRole>,
    /// Epoch milliseconds.
    pub expires: i64,
    /// Epoch milliseconds.
    pub created: i64,
    #[schema(value_type = String)]
    pub issued_by: UserName,
    /// The SHA-256 of its value.
    pub hash: String,
}

/// A static token from the configuration file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StaticTokenView {
    /// The first 16 hex digits of the value's SHA-256.
    pub id: String,
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<HostRole>,
    /// Always `null`: static tokens do not expire.
    pub expires: Option<i64>,
}

/// The provisioning tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProvisionTokens {
    pub tokens: Vec<PendingToken>,
    #[serde(rename = "static")]
    pub statics: Vec<StaticTokenView>,
}

/// Pending provisioning tokens (never their values) and the static ones (Admin).
#[utoipa::path(
    get,
    path = "/api/V2/admin/provisiontokens",
    operation_id = "list_provision_tokens",
    tag = "provisioning",
    responses(
        (status = 200, description = "The tokens.", body = ProvisionTokens),
        (status = 403, description = "Not allowed to manage provisioning tokens.", body = ErrorEnvelope),
    ),
)]
pub async fn list(State(state): State<AppState>, context: RequestContext) -> Result<Json<ProvisionTokens>, ApiError> {
    administrator(&state, &context, Action::ManageProvisionTokens)?;
    let tokens = state
        .ledger
        .pending_provision_tokens()
        .into_iter()
        .map(|t| PendingToken {
            id: t.id,
            roles: t.roles,
            expires: t.expires,
            created: t.created,
            issued_by: t.issued_by,
            hash: t.token_hash,
        })
        .collect();
    let statics = state
        .ssh
        .options
        .static_tokens
        .iter()
        .map(|t| StaticTokenView { id: t.id.clone(), roles: t.roles.clone(), expires: None })
        .collect();
    Ok(Json(ProvisionTokens { tokens, statics }))
}

/// Deletes a pending provisioning token (Admin).
#[utoipa::path(
    delete,
    path = "/api/V2/admin/provisiontokens/{id}",
    operation_id = "delete_provision_token",
    tag = "provisioning",
    params(("id" = String, Path, description = "The token's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not allowed to manage provisioning tokens.", body = ErrorEnvelope),
        (status = 404, description = "No such pending provisioning token.", body = ErrorEnvelope),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ManageProvisionTokens)?;
    hosts::delete_token(&state.ledger, &id, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of `POST /api/V2/hosts/join`'s body.
#[derive(ToSchema)]
pub struct JoinHostRequest {
    /// The provisioning token's value.
    #[schema(value_type = String, required)]
    token: Option<String>,
    /// The host's name (its certificate's first principal).
    #[schema(value_type = String, required)]
    host_id: Option<String>,
    /// The host's OpenSSH public key.
    #[schema(value_type = String, required)]
    public_key: Option<String>,
    /// The roles asked for (`node`, `proxy`, `auth`); all the token grants by default.
    roles: Option<Vec<String>>,
    /// Extra names the certificate carries (at most 16).
    principals: Option<Vec<String>>,
}

impl JsonBody for JoinHostRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            token: json.string("token")?,
            host_id: json.string("host_id")?,
            public_key: json.string("public_key")?,
            roles: json.strings("roles")?,
            principals: json.strings("principals")?,
        })
    }
}

/// A joined host and its certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinedHost {
    #[schema(value_type = String)]
    pub host_id: HostId,
    #[schema(value_type = Vec<String>)]
    pub principals: BTreeSet<HostId>,
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<HostRole>,
    /// The OpenSSH host certificate line.
    pub certificate: String,
    /// The serial number, in decimal.
    pub serial: String,
    /// Epoch milliseconds.
    pub valid_after: i64,
    /// Epoch milliseconds.
    pub valid_before: i64,
    /// The `known_hosts` line that trusts the host CA.
    pub known_hosts: String,
    /// The user CA's public key (to trust for user certificates); `null` while it has none.
    pub user_ca: Option<String>,
}

/// A host joins with a provisioning token and its public key, and gets a host certificate.
#[utoipa::path(
    post,
    path = "/api/V2/hosts/join",
    operation_id = "join_host",
    tag = "provisioning",
    request_body = JoinHostRequest,
    responses(
        (status = 200, description = "The host certificate.", body = JoinedHost),
        (status = 400, description = "A missing or illegal member, too many principals, or an unknown member.", body = ErrorEnvelope),
        (status = 401, description = "An unknown, used or expired provisioning token.", body = ErrorEnvelope),
        (status = 403, description = "Roles the token does not grant, or a name bound to another host key.", body = ErrorEnvelope),
    ),
)]
pub async fn join(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<JoinedHost>, ApiError> {
    let request: JoinHostRequest = body.read()?;
    let value = request.token.filter(|t| !t.trim().is_empty()).ok_or_else(|| AuthError::missing("token"))?;
    let host_id = HostId::parse(&request.host_id.ok_or_else(|| AuthError::missing("host_id"))?)?;
    let public_key = authority::parse_public_key(&request.public_key.ok_or_else(|| AuthError::missing("public_key"))?)?;
    let roles = roles_of(request.roles, false)?;
    let listed = request.principals.unwrap_or_default();
    if listed.len() > hosts::MAX_PRINCIPALS {
        return Err(AuthError::illegal(format!("at most {} principals", hosts::MAX_PRINCIPALS)).into());
    }
    let principals = listed.iter().map(|p| HostId::parse(p)).collect::<Result<BTreeSet<_>, _>>()?;
    let metadata = context.metadata_of(&format!("host:{host_id}"));
    let request = JoinRequest { token: value, host_id, public_key, roles, principals };
    let joined = hosts::join(&state.ledger, &state.ssh, request, &metadata).await?;
    let cert = joined.event.cert();
    let user_ca = state.ledger.authority(CaKind::User).map(|a| a.key.public_key);
    Ok(Json(JoinedHost {
        serial: cert.serial.to_string(),
        valid_after: cert.valid_after,
        valid_before: cert.valid_before,
        known_hosts: authority::known_hosts_line(&state.ssh.options.trusted_hosts(), &joined.ca.public_key),
        host_id: joined.host_id,
        principals: joined.principals,
        roles: joined.roles,
        certificate: joined.certificate,
        user_ca,
    }))
}

/// A host that joined, with its latest certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostView {
    #[schema(value_type = String)]
    pub host_id: HostId,
    #[schema(value_type = Vec<String>)]
    pub principals: BTreeSet<HostId>,
    /// The roles of its latest join.
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<HostRole>,
    /// When the host id was bound to its key (epoch milliseconds).
    pub joined: i64,
    /// Its latest join (epoch milliseconds).
    pub last_joined: i64,
    /// The host key the host id is bound to.
    pub key_fingerprint: String,
    /// Its latest certificate's serial, in decimal.
    pub serial: Option<String>,
    /// When its latest certificate expires (epoch milliseconds).
    pub valid_before: Option<i64>,
}

/// The hosts that joined.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hosts {
    pub hosts: Vec<HostView>,
}

/// Every host that joined, with its latest certificate (Admin).
#[utoipa::path(
    get,
    path = "/api/V2/admin/hosts",
    operation_id = "list_hosts",
    tag = "provisioning",
    responses(
        (status = 200, description = "The hosts.", body = Hosts),
        (status = 403, description = "Not allowed to view certificates.", body = ErrorEnvelope),
    ),
)]
pub async fn hosts(State(state): State<AppState>, context: RequestContext) -> Result<Json<Hosts>, ApiError> {
    administrator(&state, &context, Action::ViewCertificates)?;
    let hosts = state
        .ledger
        .hosts()
        .into_iter()
        .map(|h| HostView {
            last_joined: h.last_joined(),
            host_id: h.host_id,
            principals: h.principals,
            roles: h.roles,
            joined: h.joined,
            key_fingerprint: h.key_fingerprint,
            serial: h.certificate.map(|c| c.serial.to_string()),
            valid_before: h.certificate.map(|c| c.valid_before),
        })
        .collect();
    Ok(Json(Hosts { hosts }))
}

/// Frees a host id and its extra principals from their key (Admin).
///
/// The next join binds whichever key it brings.
#[utoipa::path(
    delete,
    path = "/api/V2/admin/hosts/{id}",
    operation_id = "release_host",
    tag = "provisioning",
    params(("id" = String, Path, description = "The host id.")),
    responses(
        (status = 204, description = "Released."),
        (status = 400, description = "An illegal host id.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to release hosts.", body = ErrorEnvelope),
        (status = 404, description = "No host is bound to that id.", body = ErrorEnvelope),
    ),
)]
pub async fn release(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ReleaseHost)?;
    let host_id = HostId::parse(&id)?;
    hosts::release(&state.ledger, &host_id, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    let admin = OpenApiRouter::new()
        .routes(routes!(list, issue))
        .routes(routes!(delete))
        .routes(routes!(hosts))
        .routes(routes!(release));
    OpenApiRouter::new().routes(routes!(join)).merge(behind(Access::TokenOrSession, admin))
}
