//! Provisioning (join) tokens and hosts joining with them: admins issue,
//! list and delete tokens; a host presents one with its public key and gets a
//! host certificate signed by the host CA. Static tokens from the
//! configuration file join any number of hosts; issued ones join one each.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::RngCore;
use serde_json::{Value, json};
use ssh_key::certificate::CertType;
use uuid::Uuid;

use super::AppState;
use super::admin::administrator;
use super::error::ApiError;
use super::permissions::Action;
use super::request::{Body, JsonObject, RequestContext};
use crate::access::authority::{self, CertSpec};
use crate::access::issue_certificate;
use crate::domain::{
    AuthError, CaKind, CertificateEvent, ErrorType, HostId, HostRole, JoinHost, JoinToken, ProvisionTokenCommand,
    Signed, UserName,
};
use crate::projections::hash_token;
use crate::projections::token_index::encode_hash;
use crate::store::EventMetadata;

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
    let now = state.now();
    let expires = now.saturating_add(ttl * 1000);
    let mut issued = Vec::new();
    for _ in 0..count {
        let mut secret = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut secret);
        let value = data_encoding::HEXLOWER.encode(&secret);
        let id = Uuid::new_v4();
        let command = ProvisionTokenCommand::Issue {
            token_hash: encode_hash(&hash_token(&value)),
            roles: roles.clone(),
            expires,
            issued_by: caller.name().clone(),
            at: now,
        };
        if let Err(error) = state.ledger.provision_token(id, command, &metadata).await {
            withdraw(&state, issued.iter().map(|(id, _)| *id), caller.name(), &metadata).await;
            return Err(error.into());
        }
        issued.push((id, value));
    }
    let tokens: Vec<Value> = issued
        .into_iter()
        .map(|(id, value)| json!({ "token": value, "id": id, "roles": roles, "expires": expires }))
        .collect();
    Ok(Json(json!({ "tokens": tokens, "expires": expires, "ttl": ttl })))
}

/// Deletes the tokens a failed request issued before it failed: their values
/// were never shown to anyone, so they must not stay usable. Best effort — a
/// log that refused the issue may refuse these too; the tokens then expire.
async fn withdraw(state: &AppState, ids: impl Iterator<Item = Uuid>, by: &UserName, metadata: &EventMetadata) {
    let metadata =
        EventMetadata { reason: Some("withdrawn: the request that issued it failed".into()), ..metadata.clone() };
    for id in ids {
        let command = ProvisionTokenCommand::Delete { by: by.clone(), at: state.now() };
        if let Err(error) = state.ledger.provision_token(id, command, &metadata).await {
            tracing::warn!(%id, %error, "cannot withdraw a provisioning token of a failed request; it stays until it expires");
        }
    }
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
        .access
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
    let no_such = || AuthError::new(ErrorType::NoSuchToken, format!("no such provisioning token {id}"));
    let id = Uuid::parse_str(&id).map_err(|_| no_such())?;
    if !state.ledger.model.read().access.has_provision_token(&id) {
        return Err(no_such().into());
    }
    let command = ProvisionTokenCommand::Delete { by: caller.name().clone(), at: state.now() };
    state.ledger.provision_token(id, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/V2/hosts/join` `{"token", "host_id", "public_key", "roles"?}`: a host certificate.
pub async fn join(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["token", "host_id", "public_key", "roles"])?;
    let value = json.string("token")?.filter(|t| !t.trim().is_empty()).ok_or_else(|| AuthError::missing("token"))?;
    let host_id = HostId::parse(&json.string("host_id")?.ok_or_else(|| AuthError::missing("host_id"))?)?;
    let public_key =
        authority::parse_public_key(&json.string("public_key")?.ok_or_else(|| AuthError::missing("public_key"))?)?;
    let requested = roles_of(&json, false)?;
    let now = state.now();
    let metadata = context.metadata_of(&format!("host:{host_id}"), state.ignore_ip());
    let invalid = || AuthError::new(ErrorType::InvalidToken, "unknown, used or expired provisioning token");
    // The signing key first: a token is never spent on a join that cannot be signed.
    let (ca, private) = state.access.keys.signer(&state.ledger, CaKind::Host).await?;
    let key_fingerprint = authority::fingerprint(&public_key);
    let (token, roles) = match state.access.static_token(&value) {
        Some(token) => {
            let roles = requested.unwrap_or_else(|| token.roles.clone());
            let uncovered: Vec<&str> = roles.difference(&token.roles).map(|r| r.id()).collect();
            if !uncovered.is_empty() {
                return Err(AuthError::unauthorized(format!(
                    "The provisioning token does not allow the role(s): {}",
                    uncovered.join(", ")
                ))
                .into());
            }
            (JoinToken::Static { id: token.id.clone() }, roles)
        }
        None => {
            let hash = encode_hash(&hash_token(value.trim()));
            let (id, granted) = {
                let model = state.ledger.model.read();
                let token = model.access.provision_token(&hash, now).ok_or_else(invalid)?;
                (token.id, token.roles.clone())
            };
            let roles = requested.unwrap_or(granted);
            let command = ProvisionTokenCommand::Use { host_id: host_id.clone(), roles: roles.clone(), at: now };
            state.ledger.provision_token(id, command, &metadata).await?;
            (JoinToken::Issued { id }, roles)
        }
    };
    // Binds the host id to its key: a shared static token may not take over a
    // host id that joined with another key (an issued token, an admin's explicit
    // grant for one host, may). The Host aggregate decides, so racing joins cannot both win.
    let join =
        JoinHost { roles: roles.clone(), key_fingerprint: key_fingerprint.clone(), token: token.clone(), at: now };
    state.ledger.host(&host_id, join, &metadata).await?;
    let valid_after = (now - 60_000) / 1000;
    let valid_before = now.saturating_add(state.access.options.host_cert_ttl_ms) / 1000;
    let (certificate, event) = issue_certificate(&state.ledger, &metadata, |serial| {
        let certificate = authority::sign(
            &private,
            CertSpec {
                cert_type: CertType::Host,
                subject: &public_key,
                key_id: host_id.to_string(),
                principals: vec![host_id.to_string()],
                serial,
                valid_after: u64::try_from(valid_after).unwrap_or(0),
                valid_before: u64::try_from(valid_before).unwrap_or(0),
            },
        )?;
        let cert = Signed {
            serial,
            key_fingerprint: key_fingerprint.clone(),
            valid_after: valid_after * 1000,
            valid_before: valid_before * 1000,
            ca_fingerprint: ca.fingerprint.clone(),
            at: now,
        };
        let event = CertificateEvent::HostCertIssued {
            host_id: host_id.clone(),
            roles: roles.clone(),
            token: token.clone(),
            cert,
        };
        Ok((certificate, event))
    })
    .await?;
    let cert = event.cert();
    let user_ca = state.ledger.model.read().access.authority(CaKind::User).map(|a| a.key.public_key.clone());
    Ok(Json(json!({
        "host_id": host_id,
        "roles": roles,
        "certificate": certificate,
        "serial": cert.serial.to_string(),
        "valid_after": cert.valid_after,
        "valid_before": cert.valid_before,
        "known_hosts": authority::known_hosts_line(&state.access.options.known_hosts_pattern, &ca.public_key),
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
                "host_id": h.host_id, "roles": h.roles, "joined": h.joined, "last_joined": h.last_joined(), "key_fingerprint": h.key_fingerprint,
                "serial": h.certificate.map(|c| c.serial.to_string()),
                "valid_before": h.certificate.map(|c| c.valid_before),
            })
        })
        .collect();
    Ok(Json(json!({ "hosts": hosts })))
}
