//! Globus (reference §9.2): OAuth2 with PKCE, then the access token's
//! introspection for the person's primary identity and the ids of their
//! linked identities, then Globus' identities API for those — several
//! identities per login, each a [`ProviderIdentity`] of the provider.

use serde_json::Value;
use url::Url;

use super::oauth::{ErrorShape, field, json_of, pkce};
use super::{Authorization, Endpoints, ProviderError, ProviderIdentity, ProviderSettings};
use crate::domain::token::Mfa;

const SERVICE: &str = "Globus";
const SCOPE: &str = "urn:globus:auth:scope:auth.globus.org:view_identities email";

/// The authorization request.
pub(super) fn authorize(
    settings: &ProviderSettings,
    endpoints: &Endpoints,
    state: &str,
    redirect: &str,
) -> Result<Authorization, ProviderError> {
    let (verifier, challenge) = pkce();
    let mut url =
        Url::parse(&endpoints.authorize_url).map_err(|e| ProviderError::Settings(format!("authorize_url: {e}")))?;
    let scope = if settings.scopes.is_empty() { SCOPE.to_owned() } else { settings.scopes.join(" ") };
    url.query_pairs_mut()
        .append_pair("scope", &scope)
        .append_pair("state", state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("client_id", &settings.client_id);
    Ok(Authorization { url, pkce_verifier: verifier, nonce: String::new() })
}

/// What the way back brings to exchange, and whether to ask for the linked identities.
pub(super) struct Exchange<'a> {
    pub code: &'a str,
    pub verifier: &'a str,
    pub redirect: &'a str,
    pub secondary_identities: bool,
}

/// The code exchanged for an access token, its introspection, the linked identities.
pub(super) async fn complete(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    endpoints: &Endpoints,
    exchange: Exchange<'_>,
) -> Result<Vec<ProviderIdentity>, ProviderError> {
    let Exchange { code, verifier, redirect, secondary_identities } = exchange;
    let form =
        [("code", code), ("code_verifier", verifier), ("redirect_uri", redirect), ("grant_type", "authorization_code")];
    let response = http
        .post(&endpoints.token_url)
        .basic_auth(&settings.client_id, Some(&settings.client_secret))
        .header("Accept", "application/json")
        .form(&form)
        .send()
        .await;
    let tokens = json_of(response, SERVICE, "Authtoken retrieval failed: ", ErrorShape::Globus).await?;
    let access = field(&tokens, "access_token")
        .ok_or_else(|| ProviderError::Retrieval("No access token was returned by Globus".into()))?;
    let introspect_url = format!("{}/v2/oauth2/token/introspect", endpoints.api_url.trim_end_matches('/'));
    let response = http
        .post(introspect_url)
        .basic_auth(&settings.client_id, Some(&settings.client_secret))
        .header("Accept", "application/json")
        .form(&if secondary_identities {
            vec![("token", access.as_str()), ("include", "identities_set")]
        } else {
            vec![("token", access.as_str())]
        })
        .send()
        .await;
    let introspected = json_of(response, SERVICE, "Primary identity retrieval failed: ", ErrorShape::Globus).await?;
    let audience: Vec<&str> = introspected["aud"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !audience.contains(&settings.client_id.as_str()) {
        return Err(ProviderError::Retrieval(
            "The audience for the Globus request does not include this client".into(),
        ));
    }
    let primary = identity(&settings.name, &introspected, "sub")?;
    let mut wanted: Vec<String> = introspected["identities_set"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty() && *i != primary.id)
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut identities = vec![primary];
    if wanted.is_empty() {
        return Ok(identities);
    }
    let identities_url = format!("{}/v2/api/identities", endpoints.api_url.trim_end_matches('/'));
    let response = http
        .get(identities_url)
        .query(&[("ids", wanted.join(","))])
        .bearer_auth(&access)
        .header("Accept", "application/json")
        .send()
        .await;
    let found =
        json_of(response, SERVICE, "Secondary identity retrieval failed: ", ErrorShape::GlobusIdentities).await?;
    let mut secondary = Vec::new();
    for entry in found["identities"].as_array().into_iter().flatten() {
        secondary.push(identity(&settings.name, entry, "id")?);
    }
    // Compared as sets, as upstream does: an identity Globus lists twice counts once.
    secondary.sort_by(|a, b| a.id.cmp(&b.id));
    secondary.dedup_by(|a, b| a.id == b.id);
    let received: Vec<String> = secondary.iter().map(|i| i.id.clone()).collect();
    if received != wanted {
        return Err(ProviderError::Retrieval(format!(
            "Requested secondary identities do not match recieved: [{}] vs [{}]",
            wanted.join(", "),
            received.join(", ")
        )));
    }
    identities.extend(secondary);
    Ok(identities)
}

/// One Globus identity (`id_key` names its id: `sub` in an introspection, `id` in the identities API).
fn identity(provider: &str, value: &Value, id_key: &str) -> Result<ProviderIdentity, ProviderError> {
    let id =
        field(value, id_key).ok_or_else(|| ProviderError::Retrieval("No identity id was returned by Globus".into()))?;
    let username = field(value, "username")
        .ok_or_else(|| ProviderError::Retrieval("No username was returned by Globus".into()))?;
    Ok(ProviderIdentity {
        provider: provider.to_owned(),
        id,
        username,
        // Globus does not say whether it verified an identity's email.
        email_verified: false,
        email: field(value, "email"),
        full_name: field(value, "name"),
        mfa: Mfa::Unknown,
    })
}
