//! The administrative commands that talk to a running server over its HTTP
//! API with an Admin's token (like `tctl`): `tokens add|ls|rm` and `users add`.
//! Each reads the server's typed answer (the API's own answer types) and
//! prints text for people or JSON for scripts; a refusal prints the
//! server's message.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::invites::IssuedInvite;
use crate::api::provisioning::{IssuedTokens, ProvisionTokens};
use crate::domain::describe::timestamp;

/// Where the server is and who is asking.
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {server}: {source}")]
    Unreachable { server: String, source: reqwest::Error },
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("the server answered {status} with an unreadable body: {body}")]
    Unreadable { status: StatusCode, body: String },
}

impl Client {
    pub fn new(server: &str, token: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { http, server: server.trim_end_matches('/').to_owned(), token: token.trim().to_owned() }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server))
            .header("Authorization", &self.token)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        let response =
            request.send().await.map_err(|source| ClientError::Unreachable { server: self.server.clone(), source })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) });
        }
        match serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        {
            Some(message) => Err(ClientError::Refused(message)),
            None => Err(ClientError::Unreadable { status, body: text }),
        }
    }

    /// `call`, its answer read as `T`.
    async fn typed<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ClientError> {
        let answer = self.call(method, path, body).await?;
        serde_json::from_value(answer.clone())
            .map_err(|_| ClientError::Unreadable { status: StatusCode::OK, body: answer.to_string() })
    }

    /// Issues `count` provisioning tokens; returns the server's answer.
    pub async fn add_tokens(
        &self,
        roles: &[String],
        ttl_seconds: i64,
        count: i64,
    ) -> Result<IssuedTokens, ClientError> {
        let body = json!({"roles": roles, "ttl": ttl_seconds, "count": count});
        self.typed(Method::POST, "/api/V2/admin/provisiontokens", Some(body)).await
    }

    /// The pending provisioning tokens and the static ones.
    pub async fn list_tokens(&self) -> Result<ProvisionTokens, ClientError> {
        self.typed(Method::GET, "/api/V2/admin/provisiontokens", None).await
    }

    pub async fn remove_token(&self, id: &str) -> Result<(), ClientError> {
        let path = format!(
            "/api/V2/admin/provisiontokens/{}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        self.call(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// Invites a user; returns the server's answer (`token`, `url`, `expires`).
    pub async fn invite(
        &self,
        user: &str,
        logins: &[String],
        identities: &[String],
        ttl_seconds: i64,
    ) -> Result<IssuedInvite, ClientError> {
        let mut body = json!({"user": user, "identities": identities, "ttl": ttl_seconds});
        if !logins.is_empty() {
            body["logins"] = json!(logins);
        }
        self.typed(Method::POST, "/api/V2/admin/invites", Some(body)).await
    }

    /// Forgets a user (`POST /admin/user/{user}/forget`).
    pub async fn forget_user(&self, user: &str, reason: &str) -> Result<(), ClientError> {
        let path =
            format!("/admin/user/{}/forget", url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>());
        self.call(Method::POST, &path, Some(json!({"reason": reason}))).await.map(|_| ())
    }

    pub fn server(&self) -> &str {
        &self.server
    }
}

/// What `tokens add` prints for people: each token, how long it lives, and how a host joins with it.
pub fn tokens_added_text(server: &str, answer: &IssuedTokens, ttl: &str) -> String {
    let tokens: Vec<&str> = answer.tokens.iter().map(|t| t.token.as_str()).collect();
    let roles: Vec<String> = answer.tokens.first().map(|t| roles_of(&t.roles)).unwrap_or_default();
    let expires = timestamp(answer.expires);
    let mut out = String::new();
    let noun = if tokens.len() == 1 { "token" } else { "tokens" };
    out.push_str(&format!(
        "{} provisioning {noun} for role(s) {}, valid for {ttl} (until {expires}), one host each:\n",
        tokens.len(),
        roles.join(",")
    ));
    for token in &tokens {
        out.push_str(&format!("  {token}\n"));
    }
    // A host joins under a name inside the cluster: its short name, then the cluster's.
    let host_id = match &answer.cluster_name {
        Some(cluster) => format!("$(hostname -s).{cluster}"),
        None => "$(hostname -f)".to_owned(),
    };
    out.push_str("\nOn the new host, run (it answers with a host certificate and the CA lines to trust):\n\n");
    out.push_str(&format!(
        "  curl -sf -X POST {server}/api/V2/hosts/join -H 'Content-Type: application/json' \\\n    \
         -d '{{\"token\":\"{}\",\"host_id\":\"'\"{host_id}\"'\",\"public_key\":\"'\"$(cat /etc/ssh/ssh_host_ed25519_key.pub)\"'\"}}'\n",
        tokens.first().copied().unwrap_or_default()
    ));
    out
}

/// The role ids of a token, in order.
fn roles_of(roles: &std::collections::BTreeSet<crate::domain::HostRole>) -> Vec<String> {
    roles.iter().map(ToString::to_string).collect()
}

/// What `tokens ls` prints for people.
pub fn tokens_listed_text(answer: &ProvisionTokens) -> String {
    let mut out = format!("{:<38} {:<16} {}\n", "ID", "ROLES", "EXPIRES");
    for token in &answer.tokens {
        let roles = roles_of(&token.roles).join(",");
        out.push_str(&format!("{:<38} {:<16} {}\n", token.id.to_string(), roles, timestamp(token.expires)));
    }
    for token in &answer.statics {
        let roles = roles_of(&token.roles).join(",");
        out.push_str(&format!("{:<38} {:<16} {}\n", format!("static:{}", token.id), roles, "never (configuration)"));
    }
    out
}

/// What `users add` prints for people.
pub fn invited_text(answer: &IssuedInvite) -> String {
    format!(
        "Invited {}. The invitation is valid until {} and works once; share this URL with them:\n\n{}\n",
        answer.user,
        timestamp(answer.expires),
        answer.url
    )
}
