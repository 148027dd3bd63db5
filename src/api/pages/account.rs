//! The pages of a signed-in person (and of the way in): the server's root,
//! local login and password change, the profile, tokens, custom roles,
//! logout and the invitation.

use askama::Template;
use axum::response::Response;

use super::{Nav, Profile, RoleRow, TokenRow, render};
use crate::api::error::ApiError;
use crate::domain::{CustomRoleId, RemoteIdentity, Role};
use crate::projections::{TokenView, UserRecord};

#[derive(Template)]
#[template(path = "root.html")]
pub struct RootPage<'a> {
    pub nav: Nav,
    pub service_name: &'a str,
    pub version: &'a str,
    pub server_time: String,
    pub git_commit: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
    user: String,
}

/// `GET /localaccount/login`.
pub fn login(nav: Nav, user: Option<&str>) -> Result<Response, ApiError> {
    render(&LoginPage { nav, user: user.unwrap_or_default().to_owned() })
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    nav: Nav,
    user: String,
}

/// `GET /localaccount/reset?user=`.
pub fn reset(nav: Nav, user: Option<&str>) -> Result<Response, ApiError> {
    render(&ResetPage { nav, user: user.unwrap_or_default().to_owned() })
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    nav: Nav,
    profile: Profile,
    roles: Vec<RoleRow>,
    custom_roles: Vec<String>,
    local: bool,
    identities: Vec<RemoteIdentity>,
    /// Unlink buttons: an account created from a provider keeps its last identity.
    can_unlink: bool,
}

/// `GET /me`: the profile, with the forms that change it.
pub fn me(user: &UserRecord) -> Result<Response, ApiError> {
    let identities: Vec<RemoteIdentity> = user.remote_identities.values().cloned().collect();
    render(&MePage {
        nav: Nav::of(user),
        profile: Profile::of(user),
        roles: user.roles.iter().map(|r| RoleRow::of(*r, true)).collect(),
        custom_roles: user.custom_roles.iter().map(ToString::to_string).collect(),
        local: user.local,
        can_unlink: may_unlink(user),
        identities,
    })
}

/// Whether an identity may be unlinked (the `/me` JSON's `unlink`): more than
/// one linked, or a local account (its password remains) with any.
pub fn may_unlink(user: &UserRecord) -> bool {
    user.remote_identities.len() > 1 || (user.local && !user.remote_identities.is_empty())
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    nav: Nav,
    local: bool,
    providers: Vec<String>,
}

/// `GET /link`: the providers to link an identity of (a local account
/// cannot; the form goes on to their `login_origins`).
pub fn link(user: &UserRecord, providers: Vec<String>, login_origins: &[String]) -> Result<Response, ApiError> {
    super::render_posting_to(&LinkPage { nav: Nav::of(user), local: user.local, providers }, login_origins)
}

#[derive(Template)]
#[template(path = "link_choice.html")]
struct LinkChoicePage<'a> {
    nav: Nav,
    choice: &'a crate::app::links::LinkChoice,
    expires: String,
}

/// `GET /link/choice`: the new identities to link, and those already linked
/// (the forms go on to the post-link redirect, if any).
pub fn link_choice(
    nav: Nav,
    choice: &crate::app::links::LinkChoice,
    post_link: Option<&str>,
) -> Result<Response, ApiError> {
    let targets: Vec<String> = post_link.and_then(super::origin_of).into_iter().collect();
    super::render_posting_to(&LinkChoicePage { nav, choice, expires: super::at(choice.expires) }, &targets)
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Nav,
    user: String,
    current: TokenRow,
    tokens: Vec<TokenRow>,
    revoke_base: &'static str,
    dev: bool,
    service: bool,
}

/// What `/tokens` shows a user: the session's token, the others, and which
/// kinds the user may create.
pub struct TokenList<'a> {
    pub user: &'a UserRecord,
    pub current: &'a TokenView,
    pub others: &'a [TokenView],
    pub dev: bool,
    pub service: bool,
}

pub fn tokens(list: TokenList<'_>) -> Result<Response, ApiError> {
    render(&TokensPage {
        nav: Nav::of(list.user),
        user: list.user.name.to_string(),
        current: TokenRow::of(list.current),
        tokens: list.others.iter().map(TokenRow::of).collect(),
        revoke_base: "/tokens/revoke/",
        dev: list.dev,
        service: list.service,
    })
}

#[derive(Template)]
#[template(path = "token_created.html")]
struct TokenCreatedPage<'a> {
    nav: Nav,
    token: &'a str,
    view: TokenRow,
}

/// The new token's value, shown this once.
pub fn token_created(user: &UserRecord, value: &str, view: &TokenView) -> Result<Response, ApiError> {
    render(&TokenCreatedPage { nav: Nav::of(user), token: value, view: TokenRow::of(view) })
}

pub struct CustomRoleRow {
    pub id: String,
    pub desc: String,
}

#[derive(Template)]
#[template(path = "customroles.html")]
struct CustomRolesPage {
    nav: Nav,
    roles: Vec<CustomRoleRow>,
    /// The administrator's page: delete buttons and the form that adds one.
    manage: bool,
}

/// `GET /customroles` (`manage` false) and `GET /admin/customroles` (true).
pub fn custom_roles<'a>(
    nav: Nav,
    roles: impl Iterator<Item = (&'a CustomRoleId, &'a String)>,
    manage: bool,
) -> Result<Response, ApiError> {
    let roles = roles.map(|(id, desc)| CustomRoleRow { id: id.to_string(), desc: desc.clone() }).collect();
    render(&CustomRolesPage { nav, roles, manage })
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    nav: Nav,
    user: Option<String>,
    done: bool,
}

/// `GET /logout`: the confirmation.
pub fn logout(user: &UserRecord) -> Result<Response, ApiError> {
    render(&LogoutPage { nav: Nav::of(user), user: Some(user.name.to_string()), done: false })
}

/// After `POST /logout`: "Bye" (the name when the token was still valid).
pub fn logged_out(user: Option<&str>) -> Result<Response, ApiError> {
    render(&LogoutPage { nav: Nav::anonymous(), user: user.map(str::to_owned), done: true })
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    nav: Nav,
    user: &'a str,
    otpauth_uri: &'a str,
    qr_png: &'a str,
    token: &'a str,
}

/// `GET /web/newuser/{token}`: the TOTP enrolment and the completion form.
pub fn invitation(user: &str, otpauth_uri: &str, qr_png: &str, token: &str) -> Result<Response, ApiError> {
    render(&InvitationPage { nav: Nav::anonymous(), user, otpauth_uri, qr_png, token })
}

/// Built-in roles a user may hold, as checkboxes (Root is never offered).
pub fn grantable_roles(held: &std::collections::BTreeSet<Role>) -> Vec<RoleRow> {
    [Role::DevToken, Role::ServToken, Role::Admin, Role::CreateAdmin]
        .into_iter()
        .map(|role| RoleRow::of(role, held.contains(&role)))
        .collect()
}

#[derive(Template)]
#[template(path = "provider_login.html")]
struct ProviderLoginPage {
    nav: Nav,
    providers: Vec<String>,
}

/// `GET /login`: the enabled providers to sign in with (the form goes on to
/// their `login_origins`).
pub fn provider_login(nav: Nav, providers: Vec<String>, login_origins: &[String]) -> Result<Response, ApiError> {
    super::render_posting_to(&ProviderLoginPage { nav, providers }, login_origins)
}

#[derive(Template)]
#[template(path = "login_choice.html")]
struct LoginChoicePage<'a> {
    nav: Nav,
    choice: &'a crate::app::provider_login::LoginChoice,
    expires: String,
}

impl LoginChoicePage<'_> {
    fn agreed(&self, at: &i64) -> String {
        super::at(*at)
    }
}

/// `GET /login/choice`: the accounts to log in to, the identities to create
/// one from (the forms go on to the post-login `redirect`, if any).
pub fn login_choice(
    nav: Nav,
    choice: &crate::app::provider_login::LoginChoice,
    redirect: Option<&str>,
) -> Result<Response, ApiError> {
    let targets: Vec<String> = redirect.and_then(super::origin_of).into_iter().collect();
    super::render_posting_to(&LoginChoicePage { nav, choice, expires: super::at(choice.expires) }, &targets)
}
