//! `GET /`: the service's identity (the HTML page for a browser, else JSON).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, wants_html};
use super::pages::{self, Nav};

pub const VERSION: &str = "0.7.2";
pub const SERVICE_NAME: &str = "Authentication Service";

pub fn root_document(state: &AppState) -> Value {
    json!({
        "version": VERSION,
        "servicename": SERVICE_NAME,
        "servertime": state.now(),
        "gitcommithash": state.info.git_commit,
    })
}

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
