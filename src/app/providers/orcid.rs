//! ORCID (reference §9.4): OAuth2 without PKCE; the ORCID iD and name come
//! with the token, the email from ORCID's record API.

use url::Url;

use super::oauth::{ErrorShape, field, json_of};
use super::{Authorization, Endpoints, ProviderError, ProviderIdentity, ProviderSettings};
use crate::domain::token::Mfa;

const SERVICE: &str = "OrcID";

/// The authorization request (ORCID takes no PKCE: the state alone binds the flow).
pub(super) fn authorize(
    settings: &ProviderSettings,
    endpoints: &Endpoints,
    state: &str,
    redirect: &str,
) -> Result<Authorization, ProviderError> {
    let mut url =
        Url::parse(&endpoints.authorize_url).map_err(|e| ProviderError::Settings(format!("authorize_url: {e}")))?;
    let scope = if settings.scopes.is_empty() { "/authenticate".to_owned() } else { settings.scopes.join(" ") };
    url.query_pairs_mut()
        .append_pair("scope", &scope)
        .append_pair("state", state)
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("client_id", &settings.client_id);
    Ok(Authorization { url, pkce_verifier: String::new(), nonce: String::new() })
}

/// The code exchanged for the ORCID iD, then the record's first email.
pub(super) async fn complete(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    endpoints: &Endpoints,
    code: &str,
    redirect: &str,
) -> Result<Vec<ProviderIdentity>, ProviderError> {
    let form = [
        ("code", code),
        ("redirect_uri", redirect),
        ("grant_type", "authorization_code"),
        ("client_id", settings.client_id.as_str()),
        ("client_secret", settings.client_secret.as_str()),
    ];
    let response = http.post(&endpoints.token_url).header("Accept", "application/json").form(&form).send().await;
    let tokens = json_of(response, SERVICE, "Authtoken retrieval failed: ", ErrorShape::Described).await?;
    let access = field(&tokens, "access_token")
        .ok_or_else(|| ProviderError::Retrieval("No access token was returned by OrcID".into()))?;
    let orcid =
        field(&tokens, "orcid").ok_or_else(|| ProviderError::Retrieval("No id was returned by OrcID".into()))?;
    let email_url = format!("{}/v2.1/{orcid}/email", endpoints.api_url.trim_end_matches('/'));
    let response = http.get(email_url).bearer_auth(&access).header("Accept", "application/json").send().await;
    let record = json_of(response, SERVICE, "", ErrorShape::Described).await?;
    let email = record["email"].as_array().and_then(|e| e.first()).and_then(|e| field(e, "email"));
    Ok(vec![ProviderIdentity {
        provider: settings.name.clone(),
        id: orcid.clone(),
        username: orcid,
        email_verified: false,
        email,
        full_name: field(&tokens, "name"),
        mfa: Mfa::Unknown,
    }])
}
