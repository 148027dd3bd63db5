//! SSH certificates over HTTP: the authorities' public keys (`GET /api/V2/ca`),
//! rotating an authority, user certificates (`POST /api/V2/certs/ssh`), the
//! logins a user's certificates carry, and the list of every certificate issued.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{administrator, parse_user, target};
use super::error::ApiError;
use super::permissions::{self, Action};
use super::request::{Body, FirstQuery, Input, RequestContext, any_token};
use crate::app::ssh::{self, authority};
use crate::domain::User;
use crate::domain::cert_authority::RotationStep;
use crate::domain::describe::timestamp;
use crate::domain::{AuthError, CaKind, CertificateEvent, JoinToken, Login, UserCommand};
use crate::projections::access::CertificateRecord;

fn authority_json(state: &AppState, ca: CaKind) -> Value {
    match state.ledger.model.read().access.authority(ca) {
        None => Value::Null,
        Some(record) => {
            let trusted = record.trusted();
            // One trust line per trusted key (two while a rotation is in progress).
            let lines: Vec<String> = trusted
                .iter()
                .map(|key| match ca {
                    CaKind::User => authority::authorized_keys_line(&key.public_key),
                    CaKind::Host => authority::known_hosts_line(&state.ssh.options.trusted_hosts(), &key.public_key),
                })
                .collect();
            let keys: Vec<Value> =
                trusted.iter().map(|k| json!({"public_key": k.public_key, "fingerprint": k.fingerprint})).collect();
            json!({
                "public_key": record.key.public_key,
                "fingerprint": record.key.fingerprint,
                "created": record.created,
                "rotated": record.rotated,
                "phase": record.phase().id(),
                "trusted": keys,
                if ca == CaKind::User { "authorized_keys" } else { "known_hosts" }: lines.join("\n"),
            })
        }
    }
}

/// `GET /api/V2/ca`: both public keys, as `authorized_keys` and `known_hosts` lines. Public.
pub async fn authorities(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "user": authority_json(&state, CaKind::User),
        "host": authority_json(&state, CaKind::Host),
        "cluster_name": state.ssh.options.cluster_name,
    }))
}

/// `POST /api/V2/admin/ca/rotate` `{"ca": "user"|"host", "phase"?}`: without a
/// phase, a new signing key from now on (the old one is dropped at once); with
/// one, a step of a phased rotation (`init`, `update_clients`,
/// `update_servers`, `standby`, `rollback`).
pub async fn rotate(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["ca", "phase"])?;
    let ca = CaKind::parse(&json.string("ca")?.ok_or_else(|| AuthError::missing("ca"))?)?;
    let step = json.string("phase")?.map(|p| RotationStep::parse(&p)).transpose()?;
    let caller = administrator(&state, &context, Action::RotateCertAuthority)?;
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    match step {
        None => {
            authority::install_key(&state.ledger, ca, Some(caller.name().clone()), &metadata).await?;
        }
        Some(step) => authority::rotate_in_phases(&state.ledger, ca, step, caller.name(), &metadata).await?,
    }
    Ok(Json(json!({ ca.id(): authority_json(&state, ca) })))
}

/// `POST /api/V2/certs/ssh` `{"public_key", "ttl", "user"?}`: a user certificate
/// signed by the user CA for the caller (or, for an Admin, the named user).
pub async fn user_certificate(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let json = body.json()?;
    json.reject_unexpected(&["public_key", "ttl", "user"])?;
    let public_key =
        authority::parse_public_key(&json.string("public_key")?.ok_or_else(|| AuthError::missing("public_key"))?)?;
    let ttl = json.integer("ttl")?.ok_or_else(|| AuthError::missing("ttl"))?;
    if ttl < 1 {
        return Err(AuthError::illegal("ttl must be a positive number of seconds").into());
    }
    let named = json.string("user")?.map(|u| parse_user(&u)).transpose()?;
    let token = any_token(&context.headers)?;
    let caller = state.login_caller(&token, None)?;
    let subject = match named {
        Some(name) if name != *caller.name() => {
            permissions::check(Action::IssueCertForOthers, &caller.user.roles)?;
            let record = target(&state, &name)?;
            if record.is_disabled() {
                return Err(AuthError::disabled(name.as_str()).into());
            }
            record
        }
        _ => caller.user.clone(),
    };
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    let (certificate, event) =
        ssh::issue_user_certificate(&state.ledger, &state.ssh, &subject, caller.name(), &public_key, ttl, &metadata)
            .await?;
    let cert = event.cert();
    Ok(Json(json!({
        "certificate": certificate,
        "serial": cert.serial.to_string(),
        "user": subject.name,
        "principals": subject.effective_logins(),
        "valid_after": cert.valid_after,
        "valid_before": cert.valid_before,
        "ca_fingerprint": cert.ca_fingerprint,
    })))
}

/// `POST /admin/user/{user}/logins` `{"logins": [...]}`: the principals of the user's certificates.
pub async fn set_logins(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let input = body.input()?;
    input.reject_unexpected(&["logins"])?;
    // JSON: a list; the user page's form: one comma-separated field.
    let listed: Vec<String> = match &input {
        Input::Json(json) => json.strings("logins")?.ok_or_else(|| AuthError::missing("logins"))?,
        Input::Form(form) => form
            .get("logins")
            .ok_or_else(|| AuthError::missing("logins"))?
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let logins: BTreeSet<Login> = Login::parse_list(listed.iter().map(String::as_str))?;
    let caller = administrator(&state, &context, Action::ChangeLogins)?;
    target(&state, &name)?;
    let command = UserCommand::SetLogins { logins, by: caller.name().clone(), at: state.now() };
    state.ledger.execute::<User>(&name, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn certificate_json(record: &CertificateRecord) -> Value {
    let cert = record.event.cert();
    let mut out = json!({
        "position": record.position,
        "serial": cert.serial.to_string(),
        "key_fingerprint": cert.key_fingerprint,
        "ca_fingerprint": cert.ca_fingerprint,
        "valid_after": cert.valid_after,
        "valid_before": cert.valid_before,
        "issued": cert.at,
        "issued_at": timestamp(cert.at),
    });
    match &record.event {
        CertificateEvent::UserCertIssued { user, principals, requested_by, .. } => {
            out["type"] = json!("user");
            out["user"] = json!(user);
            out["principals"] = json!(principals);
            out["requested_by"] = json!(requested_by);
        }
        CertificateEvent::HostCertIssued { host_id, roles, token, .. } => {
            out["type"] = json!("host");
            out["host_id"] = json!(host_id);
            out["roles"] = json!(roles);
            out["token"] = match token {
                JoinToken::Static { id } => json!({"static": id}),
                JoinToken::Issued { id } => json!({"issued": id}),
            };
        }
    }
    out
}

#[derive(serde::Deserialize)]
pub struct CertificateQuery {
    user: Option<String>,
    host: Option<String>,
    /// Only certificates recorded after this log position (the previous page's `next`).
    after: Option<i64>,
    limit: Option<usize>,
}

/// The most certificates one page holds.
const MAX_PAGE: usize = 10_000;

/// `GET /api/V2/admin/certs[?user=NAME|host=ID][&after=POSITION][&limit=N]`: every
/// certificate issued, oldest first, a page at a time (`next` continues; null at the end).
pub async fn certificates(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<CertificateQuery>,
) -> Result<Json<Value>, ApiError> {
    administrator(&state, &context, Action::ViewCertificates)?;
    let user = query.user.as_deref().map(parse_user).transpose()?;
    let host = query.host.as_ref();
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AuthError::illegal(format!("limit must be between 1 and {MAX_PAGE}")).into());
    }
    let model = state.ledger.model.read();
    let all = model.access.certificates();
    let start = query.after.map_or(0, |after| all.partition_point(|r| r.position <= after));
    let mut page: Vec<&CertificateRecord> = all[start..]
        .iter()
        .filter(|r| match &r.event {
            CertificateEvent::UserCertIssued { user: u, .. } => host.is_none() && user.as_ref().is_none_or(|n| n == u),
            CertificateEvent::HostCertIssued { host_id, .. } => {
                user.is_none() && host.is_none_or(|h| h == host_id.as_str())
            }
        })
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = if more { page.last().map(|r| r.position) } else { None };
    let listed: Vec<Value> = page.into_iter().map(certificate_json).collect();
    Ok(Json(json!({ "certificates": listed, "next": next })))
}
