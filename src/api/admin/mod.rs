//! Administration (upstream `Admin` resource), by area: [`users`] (accounts,
//! roles, disabling, resets), [`custom_roles`] (the catalogue),
//! [`tokens`] (other users' tokens, revoke-all), [`config`] (the server's
//! configuration) and [`search`] (the administration page, user search,
//! policy ids). Each takes JSON with the `Authorization` header or a form
//! with the session cookie, and answers JSON or, to a browser, a page. Who
//! may do what is the permission table's decision; every rule past it is
//! `app::admin`'s and the domain's.

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

pub mod config;
pub mod custom_roles;
pub mod search;
pub mod tokens;
pub mod users;

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(search::routes())
        .merge(users::routes())
        .merge(custom_roles::routes())
        .merge(tokens::routes())
        .merge(config::routes())
}
