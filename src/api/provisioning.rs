//! Provisioning (join) tokens and hosts joining with them: admins issue,
//! list and delete tokens; a host presents one with its public key and gets a
//! host certificate signed by the host CA. Static tokens from the
//! configuration file join any number of hosts; issued ones join one each.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::admin::administrator;
use super::error::ApiError;
use super::permissions::Action;
use super::request::{Body, JsonObject, RequestContext};
use crate::app::hosts::{self, JoinRequest};
use crate::app::ssh::authority;
use crate::domain::{AuthError, CaKind, HostId, HostRole};

/// The longest a provisioning token may live, and how long it lives when not said.
const MAX_TTL_SECONDS: i64 = 30 * 24 * 3600;
const DEFAULT_TTL_SECONDS: i64 = 30 * 60;
/// The most tokens one request may ask for.
const MAX_COUNT: i64 = 100;

fn roles_of(json: &JsonObject, required: bool) -> Result<Option<BTreeSet<HostRole>>, ApiError> {
    match json.strings("roles")? {
        None if required => Err(AuthError::missing("roles").into()),
        None => Ok(None),
        Some(listed) => Ok(Some(HostRole::parse_list(listed.iter().map(String::as_str))?)),
    }
}

/// `POST /api/V2/admin/provisiontokens` `{"roles", "ttl"?, "count"?}`: `count` new tokens.
pub async fn issue(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["roles", "ttl", "count"])?;
    let roles = roles_of(&json, true)?.unwrap_or_default();
    let ttl = json.integer("ttl")?.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(AuthError::illegal(format!("ttl must be between 1 and {MAX_TTL_SECONDS} seconds")).into());
    }
    let count = json.integer("count")?.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(AuthError::illegal(format!("count must be between 1 and {MAX_COUNT}")).into());
    }
    let caller = administrator(&state, &context, Action::ManageProvisionTokens)?;
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    let expires = state.now().saturating_add(ttl * 1000);
    let count = usize::try_from(count).unwrap_or(1);
    let issued = hosts::issue_tokens(&state.ledger, &roles, expires, count, caller.name(), &metadata).await?;
    let tokens: Vec<Value> = issued
        .into_iter()
        .map(|t| json!({ "token": t.value, "id": t.id, "roles": roles, "expires": expires }))
        .collect();
    // Hosts join under names inside the cluster (unless the trust pattern is explicit).
    let cluster = state.ssh.options.known_hosts_pattern.is_none().then(|| state.ssh.options.cluster_name.clone());
    Ok(Json(json!({ "tokens": tokens, "expires": expires, "ttl": ttl, "cluster_name": cluster })))
}

/// `GET /api/V2/admin/provisiontokens`: pending tokens (never their values) and the static ones.
pub async fn list(State(state): State<AppState>, context: RequestContext) -> Result<Json<Value>, ApiError> {
    administrator(&state, &context, Action::ManageProvisionTokens)?;
    let now = state.now();
    let model = state.ledger.model.read();
    let tokens: Vec<Value> = model
        .access
        .provision_tokens(now)
        .into_iter()
        .map(|t| {
            json!({
                "id": t.id, "roles": t.roles, "expires": t.expires, "created": t.created,
                "issued_by": t.issued_by, "hash": t.token_hash,
            })
        })
        .collect();
    let statics: Vec<Value> = state
        .ssh
        .options
        .static_tokens
        .iter()
        .map(|t| json!({ "id": t.id, "roles": t.roles, "expires": null }))
        .collect();
    Ok(Json(json!({ "tokens": tokens, "static": statics })))
}

/// `DELETE /api/V2/admin/provisiontokens/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ManageProvisionTokens)?;
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    hosts::delete_token(&state.ledger, &id, caller.name(), &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/V2/hosts/join` `{"token", "host_id", "public_key", "roles"?, "principals"?}`: a host certificate.
pub async fn join(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["token", "host_id", "public_key", "roles", "principals"])?;
    let value = json.string("token")?.filter(|t| !t.trim().is_empty()).ok_or_else(|| AuthError::missing("token"))?;
    let host_id = HostId::parse(&json.string("host_id")?.ok_or_else(|| AuthError::missing("host_id"))?)?;
    let public_key =
        authority::parse_public_key(&json.string("public_key")?.ok_or_else(|| AuthError::missing("public_key"))?)?;
    let roles = roles_of(&json, false)?;
    let listed = json.strings("principals")?.unwrap_or_default();
    if listed.len() > hosts::MAX_PRINCIPALS {
        return Err(AuthError::illegal(format!("at most {} principals", hosts::MAX_PRINCIPALS)).into());
    }
    let principals = listed.iter().map(|p| HostId::parse(p)).collect::<Result<BTreeSet<_>, _>>()?;
    let metadata = context.metadata_of(&format!("host:{host_id}"), state.ignore_ip());
    let request = JoinRequest { token: value, host_id, public_key, roles, principals };
    let joined = hosts::join(&state.ledger, &state.ssh, request, &metadata).await?;
    let cert = joined.event.cert();
    let user_ca = state.ledger.model.read().access.authority(CaKind::User).map(|a| a.key.public_key.clone());
    Ok(Json(json!({
        "host_id": joined.host_id,
        "principals": joined.principals,
        "roles": joined.roles,
        "certificate": joined.certificate,
        "serial": cert.serial.to_string(),
        "valid_after": cert.valid_after,
        "valid_before": cert.valid_before,
        "known_hosts": authority::known_hosts_line(&state.ssh.options.trusted_hosts(), &joined.ca.public_key),
        "user_ca": user_ca,
    })))
}

/// `GET /api/V2/admin/hosts`: every host that joined, with its latest certificate.
pub async fn hosts(State(state): State<AppState>, context: RequestContext) -> Result<Json<Value>, ApiError> {
    administrator(&state, &context, Action::ViewCertificates)?;
    let model = state.ledger.model.read();
    let hosts: Vec<Value> = model
        .access
        .hosts()
        .map(|h| {
            json!({
                "host_id": h.host_id, "principals": h.principals, "roles": h.roles, "joined": h.joined, "last_joined": h.last_joined(), "key_fingerprint": h.key_fingerprint,
                "serial": h.certificate.map(|c| c.serial.to_string()),
                "valid_before": h.certificate.map(|c| c.valid_before),
            })
        })
        .collect();
    Ok(Json(json!({ "hosts": hosts })))
}

/// `DELETE /api/V2/admin/hosts/{id}`: frees a host id and its extra
/// principals from their key (Admin); the next join binds whichever key it brings.
pub async fn release(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ReleaseHost)?;
    let host_id = HostId::parse(&id)?;
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    hosts::release(&state.ledger, &host_id, caller.name(), &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}
