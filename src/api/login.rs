//! Signing in through identity providers (upstream `Login`). So far: the
//! name suggestion a new account's form starts from.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use crate::domain::names::suggest_user_name;

/// `GET /login/suggestname/{name}` (no auth): `{"availablename": "..."}`, a
/// free user name like `name` — among every account, disabled ones included,
/// and the names pending invitations are for.
pub async fn suggest_name(State(state): State<AppState>, Path(name): Path<String>) -> Json<Value> {
    let model = state.ledger.model.read();
    let invited: std::collections::BTreeSet<&str> =
        model.access.invites(state.now()).into_iter().map(|i| i.user.as_str()).collect();
    let available = suggest_user_name(&name, |candidate| {
        invited.contains(candidate)
            || crate::domain::UserName::parse(Some(candidate)).is_ok_and(|n| model.users.get(&n).is_some())
    });
    Json(json!({ "availablename": available }))
}
