//! ORCID (reference §9.4): OAuth2 without PKCE; the ORCID iD and name come
//! with the token, the email from ORCID's record API. As auth2's develop
//! line does, it asks for `openid /authenticate` by default and reads from
//! the ID token's `amr` whether the person used a second factor at ORCID
//! (`"mfa"` among the methods: used; a claim without it: not used; no claim:
//! unknown), so services that admit only `mfa: Used` let ORCID users with a
//! second factor in. The ID token comes straight from ORCID's token endpoint
//! over TLS (OpenID Connect Core §3.1.3.7 lets that stand for checking its
//! signature); its audience must be this client and its subject the iD.

use url::Url;

use super::oauth::{ErrorShape, field, json_of};
use super::{Authorization, Endpoints, ProviderError, ProviderIdentity, ProviderSettings};
use crate::domain::token::Mfa;

const SERVICE: &str = "OrcID";

/// The authorization request (ORCID takes no PKCE: the state alone binds the flow).
pub(super) fn authorize(
    settings: &ProviderSettings,
    endpoints: &Endpoints,
    mfa: bool,
    state: &str,
    redirect: &str,
) -> Result<Authorization, ProviderError> {
    let mut url =
        Url::parse(&endpoints.authorize_url).map_err(|e| ProviderError::Settings(format!("authorize_url: {e}")))?;
    let scope = match (settings.scopes.is_empty(), mfa) {
        (true, true) => "openid /authenticate".to_owned(),
        (true, false) => "/authenticate".to_owned(),
        (false, _) => settings.scopes.join(" "),
    };
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
    mfa: bool,
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
    let mfa = match mfa {
        true => mfa_of_id_token(field(&tokens, "id_token").as_deref(), &settings.client_id, &orcid)?,
        false => Mfa::Unknown,
    };
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
        mfa,
    }])
}

/// Whether the person used a second factor, from the `amr` claim of ORCID's
/// ID token (a list of methods, or — as ORCID sends it — one string): `mfa`
/// among them is used, a claim without it not used, no claim unknown. A
/// missing or malformed ID token, or one for another client or person, is
/// an error: the scope asked for one.
fn mfa_of_id_token(id_token: Option<&str>, client_id: &str, orcid: &str) -> Result<Mfa, ProviderError> {
    use base64::Engine;
    let malformed = |why: &str| ProviderError::Retrieval(format!("OrcID returned an unusable ID token: {why}"));
    let id_token = id_token.ok_or_else(|| ProviderError::Retrieval("No ID token was returned by OrcID".into()))?;
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not a JWT"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| malformed("its claims are not base64url"))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| malformed("its claims are not JSON"))?;
    let audience = match &claims["aud"] {
        serde_json::Value::String(one) => one == client_id,
        serde_json::Value::Array(many) => many.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience {
        return Err(malformed("it is not for this client"));
    }
    if claims["sub"].as_str() != Some(orcid) {
        return Err(malformed("it names another person"));
    }
    Ok(match &claims["amr"] {
        serde_json::Value::Null => Mfa::Unknown,
        serde_json::Value::String(method) if method == "mfa" => Mfa::Used,
        serde_json::Value::Array(methods) if methods.iter().any(|m| m.as_str() == Some("mfa")) => Mfa::Used,
        serde_json::Value::String(_) | serde_json::Value::Array(_) => Mfa::NotUsed,
        _ => return Err(malformed("its amr claim is neither a method nor a list of them")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn token(claims: serde_json::Value) -> String {
        let encode = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", encode(&serde_json::json!({"alg": "RS256"})), encode(&claims))
    }

    #[test]
    fn the_amr_claim_says_whether_a_second_factor_was_used() {
        let of = |amr: serde_json::Value| {
            let mut claims = serde_json::json!({"aud": "client", "sub": "0000-0001"});
            if !amr.is_null() {
                claims["amr"] = amr;
            }
            mfa_of_id_token(Some(&token(claims)), "client", "0000-0001").map_err(|e| e.to_string())
        };
        assert_eq!(of(serde_json::json!("mfa")), Ok(Mfa::Used), "ORCID's single string");
        assert_eq!(of(serde_json::json!(["pwd", "mfa"])), Ok(Mfa::Used));
        assert_eq!(of(serde_json::json!("pwd")), Ok(Mfa::NotUsed));
        assert_eq!(of(serde_json::json!([])), Ok(Mfa::NotUsed));
        assert_eq!(of(serde_json::Value::Null), Ok(Mfa::Unknown), "no claim");
        assert!(of(serde_json::json!(7)).is_err());
    }

    #[test]
    fn a_missing_malformed_or_foreign_id_token_is_an_error() {
        assert!(mfa_of_id_token(None, "client", "x").is_err());
        assert!(mfa_of_id_token(Some("not.a"), "client", "x").is_err());
        assert!(mfa_of_id_token(Some("a.!!!.c"), "client", "x").is_err());
        let other_client = token(serde_json::json!({"aud": "other", "sub": "x", "amr": "mfa"}));
        assert!(mfa_of_id_token(Some(&other_client), "client", "x").is_err());
        let other_person = token(serde_json::json!({"aud": ["client"], "sub": "y", "amr": "mfa"}));
        assert!(mfa_of_id_token(Some(&other_person), "client", "x").is_err());
    }
}
