//! The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`). Every
//! route is registered through `utoipa_axum`'s `routes!`, which takes its
//! path and methods from the handler's `#[utoipa::path]`: a route cannot
//! exist without its entry, and the schemas are the handlers' own request
//! and response types. Every operation answers its errors in the envelope.
//! What opens an operation (a token, a session cookie) is declared once for
//! a group of routes where they are registered ([`behind`]); the standard
//! 400 and 401 of an operation behind a token, and the 303 of a browser's
//! form post, are added here ([`finish`]), not written on each handler.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;

use super::error::{ApiError, ErrorBody, ErrorEnvelope};
use super::{AppState, pages};

/// The document's fixed parts: what the service is, its security schemes and the envelope.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "authledger",
        description = "An authentication service whose source of truth is an immutable event log; \
                       its HTTP API is compatible with KBase's auth2 server. Errors answer the \
                       envelope `{\"error\": {...}}` (JSON unless the request prefers text/html).",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&Security),
)]
struct Fixed;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "The token itself (no scheme word).",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "kbase_session",
                "A browser's session: a login token.",
            ))),
        );
    }
}

/// The document's start, before the routes add their paths.
pub fn base() -> OpenApi {
    Fixed::openapi()
}

/// What opens a group of operations (see [`behind`]).
#[derive(Clone, Copy)]
pub enum Access {
    /// The token in `Authorization` (the JSON API).
    Token,
    /// A browser's session cookie only.
    Session,
    /// The token in `Authorization`, else the session cookie (the pages and
    /// the JSON they call).
    TokenOrSession,
}

impl Access {
    fn requirement(self) -> Vec<SecurityRequirement> {
        let scheme = |name: &str| SecurityRequirement::new::<&str, [&str; 0], &str>(name, []);
        match self {
            Access::Token => vec![scheme("token")],
            Access::Session => vec![scheme("session")],
            Access::TokenOrSession => vec![scheme("token"), scheme("session")],
        }
    }
}

/// Declares every operation of `routes` opened by `access`, unless its own
/// attribute names another security requirement. [`finish`] then gives each
/// such operation its standard answers: 400 for no token and 401 for an
/// invalid one.
pub fn behind(access: Access, mut routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    for item in routes.get_openapi_mut().paths.paths.values_mut() {
        for (_, operation) in operations_mut(item) {
            operation.security.get_or_insert_with(|| access.requirement());
        }
    }
    routes
}

/// The 400 of an operation behind a token says "no token" too: appended to
/// the operation's own reasons (`A, B, or no token.`), unless they already
/// speak of the token or the cookie.
fn add_no_token(responses: &mut std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>>, method: &str) {
    match responses.get_mut("400") {
        Some(RefOr::T(response)) => {
            let reasons = response.description.trim_end_matches('.');
            if reasons.contains("token") || reasons.contains("cookie") {
                return;
            }
            response.description = match reasons.rsplit_once(", or ") {
                Some((first, last)) => format!("{first}, {last}, or no token."),
                None => format!("{reasons}, or no token."),
            };
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            responses.insert("400".to_owned(), enveloped("No token.", method).into());
        }
    }
}

/// How the 303 of the pipeline's post/redirect/get is described (see [`finish`]).
const FORM_POST: &str = "A browser's form post";

/// Operations behind a token that never refuse an invalid one: logging out
/// ends whatever session it is given.
const NO_INVALID_TOKEN_ANSWER: [&str; 1] = ["logout"];

/// Whether `operation` is opened by a token (the `token` or `session`
/// security scheme) and refuses an invalid one.
fn behind_token(operation: &utoipa::openapi::path::Operation) -> bool {
    let Some(security) = &operation.security else {
        return false;
    };
    if operation.operation_id.as_deref().is_some_and(|id| NO_INVALID_TOKEN_ANSWER.contains(&id)) {
        return false;
    }
    let schemes = serde_json::to_value(security).unwrap_or_default();
    schemes.as_array().is_some_and(|all| all.iter().any(|r| r.get("token").is_some() || r.get("session").is_some()))
}

/// A standard error answer: `description`, and the envelope (a HEAD answer has no body).
fn enveloped(description: &str, method: &str) -> utoipa::openapi::Response {
    let response = ResponseBuilder::new().description(description);
    if method == "head" {
        return response.build();
    }
    response.content("application/json", Content::new(Some(Ref::from_schema_name("ErrorEnvelope")))).build()
}

/// Gives every operation the envelope for the 4xx and 5xx it did not name
/// itself: any route can answer 400 (a bad body), 404, 405, 413, 415 or 503;
/// and every operation behind a token the 400 of a missing one and the 401
/// of an invalid one, so no handler's attribute repeats them.
pub fn finish(openapi: &mut OpenApi) {
    let page = || Content::new(Some(RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::String).build()))));
    let envelope = |method: &str| {
        let response = ResponseBuilder::new().description("An error: the envelope, or the error page for a browser.");
        if method == "head" {
            return response.build();
        }
        response
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))))
            .content("text/html", page())
            .build()
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in openapi.paths.paths.values() {
        for (_, operation) in operations(item) {
            if let Some(id) = &operation.operation_id {
                *seen.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            let secured = operation.security.is_some();
            // A browser's successful form post goes back to its page (the
            // pipeline's post/redirect/get): the 303 is said where the page is
            // chosen, and only of a POST, the one method the pipeline does it for
            // (an attribute shared by two methods names it for both).
            if let ("post", Some(page)) = (method, pages::page_after_post(path, false)) {
                let description = format!("{FORM_POST} (an API client gets the 204): back to `{page}`.");
                let response = ResponseBuilder::new().description(description).build();
                operation.responses.responses.entry("303".to_owned()).or_insert_with(|| response.into());
            }
            if method != "post"
                && let Some(RefOr::T(response)) = operation.responses.responses.get("303")
                && response.description.starts_with(FORM_POST)
            {
                operation.responses.responses.remove("303");
            }
            let behind_token = behind_token(operation);
            let responses = &mut operation.responses.responses;
            // Every operation a token opens answers 400 without one and 401
            // for an invalid one: said once, here.
            if secured {
                add_no_token(responses, method);
            }
            if behind_token {
                responses.entry("401".to_owned()).or_insert_with(|| enveloped("An invalid token.", method).into());
            }
            for range in ["4XX", "5XX"] {
                responses.entry(range.to_owned()).or_insert_with(|| envelope(method).into());
            }
            // A request that prefers text/html (a browser) gets every error as the error page.
            for (status, response) in responses.iter_mut() {
                if let (true, RefOr::T(response)) = (status.starts_with('4') || status.starts_with('5'), response)
                    && response.content.contains_key("application/json")
                {
                    response.content.entry("text/html".to_owned()).or_insert_with(|| page().into());
                }
            }
            // One handler serving two methods (or two modules' same-named handlers)
            // would share an operation id: the method tells them apart.
            if let Some(id) = &mut operation.operation_id
                && seen.get(id.as_str()).is_some_and(|count| *count > 1)
            {
                let tag = operation.tags.as_ref().and_then(|tags| tags.first()).cloned().unwrap_or_default();
                *id = format!("{tag}_{id}_{method}");
            }
        }
    }
}

fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [("get", &item.get), ("put", &item.put), ("post", &item.post), ("delete", &item.delete), ("head", &item.head)]
        .into_iter()
        .filter_map(|(method, operation)| operation.as_ref().map(|o| (method, o)))
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("head", &mut item.head),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
}

/// The document as served, written once when the router is made (see [`publish`]).
static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();

/// Keeps the finished document for `GET /openapi.json`. It is the same for
/// every router this build makes, so the first one is kept.
pub fn publish(openapi: &OpenApi) {
    DOCUMENT.get_or_init(|| match openapi.to_json() {
        Ok(json) => json.into_bytes(),
        Err(error) => {
            tracing::error!(%error, "the OpenAPI document did not serialize");
            Vec::new()
        }
    });
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json")),
)]
pub async fn document() -> Result<Response, ApiError> {
    match DOCUMENT.get() {
        Some(json) if !json.is_empty() => {
            Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json.as_slice())
                .into_response())
        }
        _ => Err(ApiError::internal("the OpenAPI document is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::members_of;

    /// The document is kept in the repository as `docs/openapi.json`, for
    /// clients to generate from and for review: a change to any operation,
    /// schema or answer shows there as a diff. Run the tests with
    /// `AUTHLEDGER_WRITE_OPENAPI=1` to write it anew after such a change.
    #[test]
    fn the_document_is_the_one_kept_in_docs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
        let (_, document) = super::super::routes().split_for_parts();
        let served = document.to_pretty_json().expect("the document serializes") + "\n";
        if std::env::var_os("AUTHLEDGER_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &served).expect("docs/openapi.json is writable");
            return;
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == served,
            "docs/openapi.json is not the document this build serves; if the change is meant, \
             run `AUTHLEDGER_WRITE_OPENAPI=1 cargo test --lib the_document_is_the_one_kept_in_docs` \
             and commit the file"
        );
    }
    use super::super::{admin, invites, link, local_account, login, me, provisioning, ssh, test_mode, tokens, v2};

    /// The members each checked JSON body may hold, as its handler accepts
    /// them: renaming a documented field changes what clients may send, so it
    /// must change here too; a type whose schema is not a plain object (a
    /// `flatten`, say) would accept nothing and fails here.
    #[test]
    fn each_checked_request_body_documents_the_members_its_handler_accepts() {
        fn pin<T: utoipa::PartialSchema>(expected: &[&str]) {
            let mut members = members_of::<T>();
            members.sort();
            assert_eq!(members, expected, "{}", std::any::type_name::<T>());
        }
        pin::<admin::config::ConfigRequest>(&[
            "allowedloginredirect",
            "allowlogin",
            "completelinkredirect",
            "completeloginredirect",
            "ignoreip",
            "postlinkredirect",
            "remove",
            "showstack",
        ]);
        pin::<admin::custom_roles::CustomRoleDeleteRequest>(&["id"]);
        pin::<admin::custom_roles::CustomRoleRequest>(&["desc", "id"]);
        pin::<admin::users::CustomRolesRequest>(&["customroles"]);
        pin::<admin::users::DisableRequest>(&["disable", "disabledreason"]);
        pin::<admin::config::EnvironmentConfigRequest>(&[
            "allowedloginredirect",
            "completelinkredirect",
            "completeloginredirect",
            "environment",
            "postlinkredirect",
        ]);
        pin::<admin::users::LocalAccountRequest>(&["display", "email", "user"]);
        pin::<admin::search::PolicyIdRequest>(&["policyid"]);
        pin::<admin::config::ProviderConfigRequest>(&["enabled", "forcelinkchoice", "forceloginchoice", "provider"]);
        pin::<admin::users::RolesRequest>(&["roles"]);
        pin::<admin::users::UserRolesChange>(&["addCustomRoles", "addRoles", "removeCustomRoles", "removeRoles"]);
        pin::<admin::config::TokenConfigRequest>(&[
            "tokenagent",
            "tokendev",
            "tokenlogin",
            "tokenserv",
            "tokensugcache",
        ]);
        pin::<admin::tokens::ViewTokenRequest>(&["token"]);
        pin::<invites::CompleteInviteRequest>(&["invite_token", "pass", "second_factor_token"]);
        pin::<invites::IssueInviteRequest>(&["identities", "logins", "ttl", "user"]);
        pin::<link::LinkPickRequest>(&["id"]);
        pin::<local_account::LocalLoginRequest>(&[
            "customcontext",
            "pwd",
            "second_factor_token",
            "stayloggedin",
            "user",
        ]);
        pin::<local_account::LocalResetRequest>(&["pwdnew", "pwdold", "second_factor_token", "user"]);
        pin::<login::LoginCreateRequest>(&["customcontext", "display", "email", "id", "linkall", "policyids", "user"]);
        pin::<login::LoginPickRequest>(&["customcontext", "id", "linkall", "policyids"]);
        pin::<provisioning::IssueTokensRequest>(&["count", "roles", "ttl"]);
        pin::<provisioning::JoinHostRequest>(&["host_id", "principals", "public_key", "roles", "token"]);
        pin::<ssh::RotateRequest>(&["ca", "phase"]);
        pin::<ssh::SetLoginsRequest>(&["logins"]);
        pin::<ssh::UserCertificateRequest>(&["public_key", "ttl", "user"]);
        pin::<test_mode::CreateTestTokenRequest>(&["mfa", "name", "type", "user"]);
        pin::<test_mode::CreateTestUserRequest>(&["display", "user"]);
        pin::<test_mode::TestCustomRoleRequest>(&["desc", "id"]);
        pin::<test_mode::TestUserRolesRequest>(&["customroles", "roles", "user"]);
        pin::<tokens::DevTokenRequest>(&["customcontext", "name", "type"]);
        pin::<v2::AgentTokenRequest>(&["customcontext", "name"]);
        pin::<me::ProfileUpdate>(&["display", "email"]);
    }
}
