//! SSH certificates over HTTP: the authorities' public keys (`GET /api/V2/ca`),
//! rotating an authority, user certificates (`POST /api/V2/certs/ssh`), the
//! logins a user's certificates carry, and the list of every certificate issued.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::caller::{administrator, parse_user, target};
use super::error::{ApiError, ErrorEnvelope};
use super::openapi::{Access, behind};
use super::permissions::{self, Action};
use super::request::{Body, FirstQuery, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, any_token};
use crate::app::admin;
use crate::app::reads::CertificatesOf;
use crate::app::ssh::{self, authority};
use crate::domain::cert_authority::RotationStep;
use crate::domain::describe::timestamp;
use crate::domain::{AuthError, CaKind, CertificateEvent, HostId, HostRole, Login, ProvisionTokenId, UserName};
use crate::projections::access::CertificateRecord;

/// A key clients or hosts trust: `{public_key, fingerprint}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedKey {
    /// The OpenSSH public key line (`ssh-ed25519 AAAA…`).
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// An authority's signing key and where its rotation stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorityKey {
    /// The OpenSSH public key line of the key that signs now.
    pub public_key: String,
    /// `SHA256:…` of the key that signs now.
    pub fingerprint: String,
    /// Epoch milliseconds.
    pub created: i64,
    /// When the key was last rotated (epoch milliseconds).
    pub rotated: Option<i64>,
    /// `standby` (no rotation in progress), `init`, `update_clients` or `update_servers`.
    pub phase: &'static str,
    /// Every key to trust now, the signing one first (two while a rotation is in progress).
    pub trusted: Vec<TrustedKey>,
}

/// The user CA: its key and the `authorized_keys` lines that trust it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAuthority {
    #[serde(flatten)]
    pub key: AuthorityKey,
    /// One `cert-authority` line per trusted key, newline-separated.
    pub authorized_keys: String,
}

/// The host CA: its key and the `known_hosts` lines that trust it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostAuthority {
    #[serde(flatten)]
    pub key: AuthorityKey,
    /// One `@cert-authority` line per trusted key, newline-separated.
    pub known_hosts: String,
}

/// Both authorities (`null` while one has no key yet).
#[derive(Debug, Serialize, ToSchema)]
pub struct Authorities {
    pub user: Option<UserAuthority>,
    pub host: Option<HostAuthority>,
    pub cluster_name: String,
}

/// The rotated authority, under its name: `{"user": ...}` or `{"host": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub enum RotatedAuthority {
    #[serde(rename = "user")]
    User(Option<UserAuthority>),
    #[serde(rename = "host")]
    Host(Option<HostAuthority>),
}

/// An authority's key and its trust lines (`authorized_keys` for the user CA, `known_hosts` for the host CA).
fn authority_key(state: &AppState, ca: CaKind) -> Option<(AuthorityKey, String)> {
    let record = state.ledger.authority(ca)?;
    let trusted = record.trusted();
    // One trust line per trusted key (two while a rotation is in progress).
    let lines: Vec<String> = trusted
        .iter()
        .map(|key| match ca {
            CaKind::User => authority::authorized_keys_line(&key.public_key),
            CaKind::Host => authority::known_hosts_line(&state.ssh.options.trusted_hosts(), &key.public_key),
        })
        .collect();
    let keys = trusted
        .iter()
        .map(|k| TrustedKey { public_key: k.public_key.clone(), fingerprint: k.fingerprint.clone() })
        .collect();
    let key = AuthorityKey {
        public_key: record.key.public_key.clone(),
        fingerprint: record.key.fingerprint.clone(),
        created: record.created,
        rotated: record.rotated,
        phase: record.phase().id(),
        trusted: keys,
    };
    Some((key, lines.join("\n")))
}

fn user_authority(state: &AppState) -> Option<UserAuthority> {
    authority_key(state, CaKind::User).map(|(key, authorized_keys)| UserAuthority { key, authorized_keys })
}

fn host_authority(state: &AppState) -> Option<HostAuthority> {
    authority_key(state, CaKind::Host).map(|(key, known_hosts)| HostAuthority { key, known_hosts })
}

/// Both authorities' public keys, as `authorized_keys` and `known_hosts` lines.
#[utoipa::path(
    get,
    path = "/api/V2/ca",
    tag = "ssh",
    responses(
        (status = 200, description = "The user and host CAs (`null` while one has no key).", body = Authorities),
    ),
)]
pub async fn authorities(State(state): State<AppState>) -> Json<Authorities> {
    Json(Authorities {
        user: user_authority(&state),
        host: host_authority(&state),
        cluster_name: state.ssh.options.cluster_name.clone(),
    })
}

/// Members of `POST /api/V2/admin/ca/rotate`'s body.
#[derive(ToSchema)]
pub struct RotateRequest {
    /// `user` or `host`.
    #[schema(value_type = String, required)]
    ca: Option<String>,
    /// A step of a phased rotation: `init`, `update_clients`, `update_servers`,
    /// `standby` or `rollback`. Without one, a new signing key from now on.
    phase: Option<String>,
}

impl JsonBody for RotateRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { ca: json.string("ca")?, phase: json.string("phase")? })
    }
}

/// Rotates a certificate authority's signing key (Admin).
///
/// Without a phase, a new signing key from now on (the old one is dropped at
/// once); with one, a step of a phased rotation (`init`, `update_clients`,
/// `update_servers`, `standby`, `rollback`).
#[utoipa::path(
    post,
    path = "/api/V2/admin/ca/rotate",
    operation_id = "rotate_cert_authority",
    tag = "ssh",
    request_body = RotateRequest,
    responses(
        (status = 200, description = "The authority after the rotation, under its name.", body = RotatedAuthority),
        (status = 400, description = "A missing or unknown CA, an illegal phase or step, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to rotate an authority.", body = ErrorEnvelope),
    ),
)]
pub async fn rotate(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<RotatedAuthority>, ApiError> {
    let request: RotateRequest = body.read()?;
    let ca = CaKind::parse(&request.ca.ok_or_else(|| AuthError::missing("ca"))?)?;
    let step = request.phase.map(|p| RotationStep::parse(&p)).transpose()?;
    let caller = administrator(&state, &context, Action::RotateCertAuthority)?;
    let acting = caller.acting(&context);
    match step {
        None => {
            authority::install_key(&state.ledger, ca, Some(acting.name().clone()), &acting.metadata).await?;
        }
        Some(step) => authority::rotate_in_phases(&state.ledger, &acting, ca, step).await?,
    }
    Ok(Json(match ca {
        CaKind::User => RotatedAuthority::User(user_authority(&state)),
        CaKind::Host => RotatedAuthority::Host(host_authority(&state)),
    }))
}

/// Members of `POST /api/V2/certs/ssh`'s body.
#[derive(ToSchema)]
pub struct UserCertificateRequest {
    /// The OpenSSH public key to certify.
    #[schema(value_type = String, required)]
    public_key: Option<String>,
    /// How long the certificate is valid, in seconds (positive).
    #[schema(value_type = i64, required)]
    ttl: Option<i64>,
    /// Whom the certificate is for (another user: Admin only); the caller by default.
    user: Option<String>,
}

impl JsonBody for UserCertificateRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { public_key: json.string("public_key")?, ttl: json.integer("ttl")?, user: json.string("user")? })
    }
}

/// A user certificate, as issued.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserCertificate {
    /// The OpenSSH certificate line.
    pub certificate: String,
    /// The certificate's serial number, in decimal.
    pub serial: String,
    /// The user it was issued for.
    #[schema(value_type = String)]
    pub user: UserName,
    /// The logins it carries.
    #[schema(value_type = Vec<String>)]
    pub principals: BTreeSet<Login>,
    /// Epoch milliseconds.
    pub valid_after: i64,
    /// Epoch milliseconds.
    pub valid_before: i64,
    /// The fingerprint of the user CA key that signed it.
    pub ca_fingerprint: String,
}

/// A user certificate signed by the user CA for the caller (or, for an Admin, the named user).
#[utoipa::path(
    post,
    path = "/api/V2/certs/ssh",
    tag = "ssh",
    request_body = UserCertificateRequest,
    responses(
        (status = 200, description = "The certificate.", body = UserCertificate),
        (status = 400, description = "A missing or illegal public key, ttl or user, an unknown member, a user without logins.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, not allowed to certify another user, or a disabled account.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn user_certificate(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<UserCertificate>, ApiError> {
    let request: UserCertificateRequest = body.read()?;
    let public_key = authority::parse_public_key(&request.public_key.ok_or_else(|| AuthError::missing("public_key"))?)?;
    let ttl = request.ttl.ok_or_else(|| AuthError::missing("ttl"))?;
    if ttl < 1 {
        return Err(AuthError::illegal("ttl must be a positive number of seconds").into());
    }
    let named = request.user.map(|u| parse_user(&u)).transpose()?;
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
    let (certificate, event) =
        ssh::issue_user_certificate(&state.ledger, &state.ssh, &caller.acting(&context), &subject, &public_key, ttl)
            .await?;
    let cert = event.cert();
    Ok(Json(UserCertificate {
        certificate,
        serial: cert.serial.to_string(),
        principals: subject.effective_logins(),
        user: subject.name,
        valid_after: cert.valid_after,
        valid_before: cert.valid_before,
        ca_fingerprint: cert.ca_fingerprint.clone(),
    }))
}

/// Members of `POST /admin/user/{user}/logins`'s JSON body.
#[derive(ToSchema)]
pub struct SetLoginsRequest {
    /// The logins (principals) the user's certificates carry.
    #[schema(value_type = Vec<String>, required)]
    logins: Option<Vec<String>>,
}

impl JsonBody for SetLoginsRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { logins: json.strings("logins")? })
    }
}

/// `POST /admin/user/{user}/logins`'s form (the user page's).
#[derive(ToSchema)]
pub struct SetLoginsForm {
    /// The logins, comma-separated.
    #[schema(value_type = String, required)]
    logins: Option<String>,
}

impl FormBody for SetLoginsForm {
    fn from_form(form: &Form) -> Self {
        Self { logins: form.text("logins") }
    }
}

/// Sets the logins (principals) a user's certificates carry (Admin).
#[utoipa::path(
    post,
    path = "/admin/user/{user}/logins",
    tag = "ssh",
    params(("user" = String, Path, description = "The user's name.")),
    request_body(content(
        (SetLoginsRequest = "application/json"),
        (SetLoginsForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "The logins are set."),
        (status = 400, description = "An illegal user name or login, missing logins, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change logins.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn set_logins(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let input = body.input()?;
    // JSON: a list; the user page's form: one comma-separated field.
    let listed: Vec<String> = match &input {
        Input::Json(json) => json.read::<SetLoginsRequest>()?.logins.ok_or_else(|| AuthError::missing("logins"))?,
        Input::Form(form) => form
            .read::<SetLoginsForm>()
            .logins
            .ok_or_else(|| AuthError::missing("logins"))?
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let logins: BTreeSet<Login> = Login::parse_list(listed.iter().map(String::as_str))?;
    let caller = administrator(&state, &context, Action::ChangeLogins)?;
    admin::set_logins(&state.ledger, &caller.acting(&context), &name, logins).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The provisioning token a host joined with: `{"static": id}` or `{"issued": id}`.
#[derive(Debug, Serialize, ToSchema)]
pub enum ProvisionTokenIdView {
    /// A token from the configuration file, by its id (a prefix of its hash).
    #[serde(rename = "static")]
    Static(String),
    /// A token issued through the API.
    #[serde(rename = "issued")]
    Issued(Uuid),
}

/// Whom a certificate was issued to, by its `type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CertificateSubject {
    /// A user certificate.
    User {
        #[schema(value_type = String)]
        user: UserName,
        #[schema(value_type = Vec<String>)]
        principals: BTreeSet<Login>,
        /// Who asked for it (the user, or an Admin).
        #[schema(value_type = String)]
        requested_by: UserName,
    },
    /// A host certificate.
    Host {
        #[schema(value_type = String)]
        host_id: HostId,
        #[schema(value_type = Vec<String>)]
        roles: BTreeSet<HostRole>,
        token: ProvisionTokenIdView,
    },
}

/// A certificate as issued, with the log position that recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    /// The log position that recorded it (what `after` takes).
    pub position: i64,
    /// The serial number, in decimal.
    pub serial: String,
    /// `SHA256:…` of the certified public key.
    pub key_fingerprint: String,
    /// The fingerprint of the authority key that signed it.
    pub ca_fingerprint: String,
    /// Epoch milliseconds.
    pub valid_after: i64,
    /// Epoch milliseconds.
    pub valid_before: i64,
    /// When it was issued (epoch milliseconds).
    pub issued: i64,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    #[serde(flatten)]
    pub subject: CertificateSubject,
}

impl CertificateView {
    fn of(record: &CertificateRecord) -> Self {
        let cert = record.event.cert();
        let subject = match &record.event {
            CertificateEvent::UserCertIssued { user, principals, requested_by, .. } => CertificateSubject::User {
                user: user.clone(),
                principals: principals.clone(),
                requested_by: requested_by.clone(),
            },
            CertificateEvent::HostCertIssued { host_id, roles, token, .. } => CertificateSubject::Host {
                host_id: host_id.clone(),
                roles: roles.clone(),
                token: match token {
                    ProvisionTokenId::Static { id } => ProvisionTokenIdView::Static(id.clone()),
                    ProvisionTokenId::Issued { id } => ProvisionTokenIdView::Issued(*id),
                },
            },
        };
        Self {
            position: record.position,
            serial: cert.serial.to_string(),
            key_fingerprint: cert.key_fingerprint.clone(),
            ca_fingerprint: cert.ca_fingerprint.clone(),
            valid_after: cert.valid_after,
            valid_before: cert.valid_before,
            issued: cert.at,
            issued_at: timestamp(cert.at),
            subject,
        }
    }
}

/// A page of certificates.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificatePage {
    pub certificates: Vec<CertificateView>,
    /// The `after` of the next page; `null` at the end.
    pub next: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertificateQuery {
    /// Only the user certificates of this user.
    user: Option<String>,
    /// Only the host certificates of this host id.
    host: Option<String>,
    /// Only certificates recorded after this log position (the previous page's `next`).
    after: Option<i64>,
    /// The most certificates the page holds (1 to 10000; 1000 by default).
    limit: Option<usize>,
}

/// The most certificates one page holds.
const MAX_PAGE: usize = 10_000;

/// Every certificate issued, oldest first, a page at a time.
///
/// `next` continues (as `after`); it is null at the end.
#[utoipa::path(
    get,
    path = "/api/V2/admin/certs",
    operation_id = "list_certificates",
    tag = "ssh",
    params(CertificateQuery),
    responses(
        (status = 200, description = "A page of certificates.", body = CertificatePage),
        (status = 400, description = "An illegal user name or limit.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to view certificates.", body = ErrorEnvelope),
    ),
)]
pub async fn certificates(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<CertificateQuery>,
) -> Result<Json<CertificatePage>, ApiError> {
    administrator(&state, &context, Action::ViewCertificates)?;
    let user = query.user.as_deref().map(parse_user).transpose()?;
    let host = query.host.as_ref();
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AuthError::illegal(format!("limit must be between 1 and {MAX_PAGE}")).into());
    }
    let of = match (&user, host) {
        (Some(user), None) => CertificatesOf::User(user),
        (None, Some(host)) => CertificatesOf::Host(host.as_str()),
        (None, None) => CertificatesOf::All,
        // A certificate is a user's or a host's, never both.
        (Some(_), Some(_)) => return Ok(Json(CertificatePage { certificates: Vec::new(), next: None })),
    };
    let (page, next) = state.ledger.certificates_page(of, query.after, limit);
    let certificates = page.iter().map(CertificateView::of).collect();
    Ok(Json(CertificatePage { certificates, next }))
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    let signed_in = OpenApiRouter::new()
        .routes(routes!(rotate))
        .routes(routes!(user_certificate))
        .routes(routes!(certificates))
        .routes(routes!(set_logins));
    OpenApiRouter::new().routes(routes!(authorities)).merge(behind(Access::TokenOrSession, signed_in))
}
