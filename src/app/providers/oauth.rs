//! What the plain OAuth2 providers (Globus, ORCID) share: their calls'
//! answers read as upstream reads them, failures worded as upstream words
//! them (reference §9.1), and PKCE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ProviderError;

/// A call's answer body, at most this long in an error.
const SHOWN_BODY: usize = 1000;

/// A PKCE verifier (30 random bytes, base32: 48 characters) and its S256 challenge.
pub(super) fn pkce() -> (String, String) {
    use rand::RngCore;
    let mut bytes = [0u8; 30];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = data_encoding::BASE32_NOPAD.encode(&bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// How a provider words its error bodies.
pub(super) enum ErrorShape {
    /// `{"error": X}` (Globus' token endpoints).
    Globus,
    /// `{"errors": [{code, detail, id}]}` (Globus' identities API).
    GlobusIdentities,
    /// `{"error", "error_description"}` (Google, ORCID).
    Described,
}

/// A call's JSON answer, or upstream's failure text for it (`stage` prefixed,
/// `service` naming the provider).
pub(super) async fn json_of(
    response: Result<reqwest::Response, reqwest::Error>,
    service: &str,
    stage: &str,
    shape: ErrorShape,
) -> Result<Value, ProviderError> {
    let fail = |text: String| ProviderError::Retrieval(format!("{stage}{text}"));
    let response = response.map_err(|e| fail(format!("Unable to reach the {service} service: {e}")))?;
    let code = response.status().as_u16();
    let text =
        response.text().await.map_err(|e| fail(format!("Unable to read the {service} service's answer: {e}")))?;
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if code == 200 {
        return parsed.ok_or_else(|| fail(format!("Unable to parse response from {service} service.")));
    }
    let Some(body) = parsed else {
        if text.trim().is_empty() {
            return Err(fail(format!(
                "Got unexpected HTTP code with no response body from {service} service: {code}."
            )));
        }
        let shown = if text.chars().count() > SHOWN_BODY {
            format!("Truncated response: {}", text.chars().take(SHOWN_BODY).collect::<String>())
        } else {
            text
        };
        return Err(fail(format!(
            "Got unexpected HTTP code and unparseable response from {service} service: {code}. Response: {shown}"
        )));
    };
    let message = match shape {
        ErrorShape::Globus => body["error"]
            .as_str()
            .map(|e| format!("{service} service returned an error. HTTP code: {code}. Error: {e}.")),
        ErrorShape::GlobusIdentities => match body["errors"].as_array().and_then(|e| e.first()) {
            Some(first) => Some(format!(
                "{service} service returned an error. HTTP code: {code}. Error {}: {}; id: {}",
                text_of(&first["code"]),
                text_of(&first["detail"]),
                text_of(&first["id"])
            )),
            None => Some(format!(
                "Got unexpected HTTP code with null error in the response body from {service} service: {code}."
            )),
        },
        ErrorShape::Described => body["error"].as_str().map(|e| {
            format!(
                "{service} service returned an error. HTTP code: {code}. Error: {e}. Error description: {}",
                text_of(&body["error_description"])
            )
        }),
    };
    Err(fail(message.unwrap_or_else(|| {
        format!("Got unexpected HTTP code with no error in the response body from {service} service: {code}.")
    })))
}

/// A JSON value as text (`null` for none).
pub(super) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// A trimmed, non-blank string member.
pub(super) fn field(value: &Value, key: &str) -> Option<String> {
    value[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}
