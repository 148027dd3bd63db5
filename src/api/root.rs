//! `GET /`: the service's identity (the HTML page for a browser, else JSON).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, wants_html};
use super::pages::{self, Nav};

pub const VERSION: &str = "0.7.2";
pub const SERVICE_NAME: &str = "Authentication Service";

/// The root document: what the service is.
#[derive(Debug, Serialize, ToSchema)]
pub struct RootDocument {
    pub version: &'static str,
    pub servicename: &'static str,
    /// The server's clock, epoch milliseconds.
    pub servertime: i64,
    pub gitcommithash: String,
}

pub fn root_document(state: &AppState) -> RootDocument {
    RootDocument {
        version: VERSION,
        servicename: SERVICE_NAME,
        servertime: state.now(),
        gitcommithash: state.info.git_commit.clone(),
    }
}

/// The service's name, version, time and build.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "service_root",
    tag = "operations",
    responses(
        (status = 200, description = "The root document (a page for a browser).",
            content((RootDocument = "application/json"), (String = "text/html"))),
    ),
)]
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !wants_html(&headers) {
        return Ok(Json(root_document(&state)).into_response());
    }
    let page = pages::account::RootPage {
        nav: Nav::from_cookie(&state, &headers),
        service_name: SERVICE_NAME,
        version: VERSION,
        server_time: pages::at(state.now()),
        git_commit: &state.info.git_commit,
    };
    pages::render(&page)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(root))
}
