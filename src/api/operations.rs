//! What operators and their tools call: `GET /healthz` (the process
//! answers), `GET /readyz` (it is ready to serve: see `app::health`),
//! `GET /metrics` (Prometheus text format), and the middleware that counts
//! and times every request by its route's template.

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::health;
use crate::telemetry;

/// `{"alive": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub alive: bool,
}

/// 200 while the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers.", body = Liveness)),
)]
pub async fn healthz() -> Response {
    Json(Liveness { alive: true }).into_response()
}

/// 200 when ready to serve, 503 otherwise, with the positions it judged by.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = health::Readiness),
        (status = 503, description = "Not ready: the store does not answer, or the projections lag.", body = health::Readiness),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = health::readiness(&state.ledger).await;
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness)).into_response()
}

/// Every metric, in Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The metrics (Prometheus text format 0.0.4).", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = health::metrics(&state.ledger, &state.provider_flows, &state.duties, state.test_mode.as_deref()).await;
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Counts and times each request by method, route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Methods are a fixed set here: any other a client invents is one label, not one each.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method.to_owned()), ("route", route), ("status", status)];
    metrics::counter!(telemetry::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(telemetry::HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}
