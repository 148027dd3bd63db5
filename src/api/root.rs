//! `GET /`: the service's identity (the HTML page for a browser, else JSON).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::wants_html;

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

pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let document = root_document(&state);
    if !wants_html(&headers) {
        return Json(document).into_response();
    }
    Html(format!(
        "<html>\n<body>\n\nAuth Server<br/>\nService name: {SERVICE_NAME}<br/>\nVersion: {VERSION}<br/>\n\
         Server time: {}<br/>\nGit commit hash: {}<br/>\n\n</body>\n</html>\n",
        document["servertime"], state.info.git_commit
    ))
    .into_response()
}
