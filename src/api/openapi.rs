//! The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`). Every
//! route is registered through `utoipa_axum`'s `routes!`, which takes its
//! path and methods from the handler's `#[utoipa::path]`: a route cannot
//! exist without its entry, and the schemas are the handlers' own request
//! and response types. Every operation answers its errors in the envelope.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use super::error::{ErrorBody, ErrorEnvelope};

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

/// Gives every operation the envelope for the 4xx and 5xx it did not name
/// itself: any route can answer 400 (a bad body), 404, 405, 413, 415 or 503.
pub fn finish(openapi: &mut OpenApi) {
    let envelope = || {
        ResponseBuilder::new()
            .description("An error, in the envelope.")
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))))
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
    for item in openapi.paths.paths.values_mut() {
        for (method, operation) in operations_mut(item) {
            let responses = &mut operation.responses.responses;
            for range in ["4XX", "5XX"] {
                responses.entry(range.to_owned()).or_insert_with(|| envelope().into());
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

/// The document as served: made on the first request, from the same route
/// table the server runs.
static DOCUMENT: LazyLock<Vec<u8>> =
    LazyLock::new(|| super::routes().into_openapi().to_json().unwrap_or_default().into_bytes());

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json")),
)]
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], DOCUMENT.as_slice()).into_response()
}
