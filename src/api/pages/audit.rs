//! The auditor's pages: the log as a filterable timeline, and one user's
//! history with its activity chart and its state as of a chosen instant.

use askama::Template;
use axum::response::Response;

use super::admin::CertRow;
use super::chart::{self, Chart};
use super::{Nav, at, render};
use crate::api::error::ApiError;
use crate::app::history::{Entry, UserAsOf};
use crate::domain::UserName;

/// The timeline's filters, as the person typed them (shown back in the form).
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub user: String,
    pub token: String,
    pub actor: String,
    pub event_type: String,
    pub since: String,
    pub until: String,
}

/// One event as the timeline shows it.
pub struct EntryRow {
    pub position: i64,
    pub when: String,
    pub event_type: String,
    pub description: String,
    /// The user the event is about, when it is a user's (linked).
    pub user: Option<String>,
    pub actor: Option<String>,
    pub actor_is_user: bool,
    /// Address and user agent of the request that caused it.
    pub origin: String,
    pub reason: String,
}

impl EntryRow {
    fn of(entry: &Entry) -> Self {
        let origin = [entry.client_addr.as_deref(), entry.user_agent.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        Self {
            position: entry.position,
            when: at(entry.recorded_at),
            event_type: entry.event_type.clone(),
            description: entry.description.clone(),
            user: (entry.aggregate_type == "User").then(|| entry.aggregate_id.clone()),
            actor: entry.actor.clone(),
            // Only users have a page (actors may be `host:ID` or `system`).
            actor_is_user: entry.actor.as_deref().is_some_and(|a| UserName::parse(Some(a)).is_ok()),
            origin,
            reason: entry.reason.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    nav: Nav,
    filter: &'a AuditFilter,
    entries: Vec<EntryRow>,
    next_page: Option<String>,
    last_day: String,
}

/// Where the timeline page links: the next page, and the last day's events.
pub struct TimelineLinks {
    pub next_page: Option<String>,
    pub last_day: String,
}

/// `GET /admin/audit`: one page of the timeline.
pub fn timeline(nav: Nav, filter: &AuditFilter, entries: &[Entry], links: TimelineLinks) -> Result<Response, ApiError> {
    let entries = entries.iter().map(EntryRow::of).collect();
    render(&AuditPage { nav, filter, entries, next_page: links.next_page, last_day: links.last_day })
}

/// A token valid at the chosen instant.
pub struct LiveTokenRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub created: String,
    pub expires: String,
}

/// The user's state at the chosen instant.
pub struct AsOfView {
    pub at: String,
    pub missing: bool,
    pub display: String,
    pub email: String,
    pub roles: String,
    pub custom_roles: String,
    pub disabled: String,
    pub second_factor: bool,
    pub logins: String,
    pub tokens: Vec<LiveTokenRow>,
    pub certificates: Vec<CertRow>,
}

impl AsOfView {
    pub fn of(at_ms: i64, state: Option<&UserAsOf>) -> Self {
        let Some(state) = state else {
            return Self {
                at: at(at_ms),
                missing: true,
                display: String::new(),
                email: String::new(),
                roles: String::new(),
                custom_roles: String::new(),
                disabled: String::new(),
                second_factor: false,
                logins: String::new(),
                tokens: Vec::new(),
                certificates: Vec::new(),
            };
        };
        let none_if_empty = |list: &[String]| if list.is_empty() { "none".to_owned() } else { list.join(", ") };
        Self {
            at: at(at_ms),
            missing: false,
            display: state.display.clone(),
            email: state.email.clone().unwrap_or_default(),
            roles: none_if_empty(&state.roles),
            custom_roles: none_if_empty(&state.custom_roles),
            disabled: state.disabled.as_ref().map_or_else(|| "no".to_owned(), |reason| format!("yes: {reason}")),
            second_factor: state.second_factor,
            logins: state.logins.join(", "),
            tokens: state
                .tokens
                .iter()
                .map(|t| LiveTokenRow {
                    id: t.id.to_string(),
                    kind: t.kind.clone(),
                    name: t.name.clone().unwrap_or_default(),
                    created: at(t.created),
                    expires: at(t.expires),
                })
                .collect(),
            certificates: state
                .certificates
                .iter()
                .map(|c| CertRow::new(&c.serial, &c.principals, c.valid_after, c.valid_before))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage<'a> {
    nav: Nav,
    user: &'a str,
    chart: Chart,
    at_input: &'a str,
    as_of: Option<AsOfView>,
    entries: Vec<EntryRow>,
    next_page: Option<String>,
}

/// What `/admin/user/{u}/history` shows.
pub struct UserHistory<'a> {
    pub user: &'a str,
    /// Every event of the user (the chart's source).
    pub all: &'a [Entry],
    /// The page of them the table shows.
    pub shown: &'a [Entry],
    pub next_page: Option<String>,
    pub at_input: &'a str,
    pub as_of: Option<AsOfView>,
    pub now: i64,
}

/// Days the activity chart covers.
pub const CHART_DAYS: i64 = 30;

pub fn user_history(nav: Nav, history: UserHistory<'_>) -> Result<Response, ApiError> {
    render(&HistoryPage {
        nav,
        user: history.user,
        chart: chart::activity(history.all, history.now, CHART_DAYS),
        at_input: history.at_input,
        as_of: history.as_of,
        entries: history.shown.iter().map(EntryRow::of).collect(),
        next_page: history.next_page,
    })
}
