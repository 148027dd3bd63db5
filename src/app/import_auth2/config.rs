//! auth2's settings (`config`, `config_app`, `config_prov`, `config_ext`;
//! `MongoStorage.updateConfig*`, `AuthExternalConfig`) as this service's.

use bson::{Bson, Document};

use super::ImportError;
use super::documents::{document_id, provider_switch, setting};
use crate::domain::ServerSettings;

/// The schema version of auth2's storage this import reads.
const SCHEMA_VERSION: i64 = 1;

/// Refuses a dump of another storage schema, or one taken mid-upgrade.
pub fn check_schema(config: &[Document]) -> Result<(), ImportError> {
    for document in config {
        if document.get_str("schema").ok() != Some("schema") {
            continue;
        }
        let version = match document.get("schemaver") {
            Some(Bson::Int32(v)) => i64::from(*v),
            Some(Bson::Int64(v)) => *v,
            _ => -1,
        };
        if version != SCHEMA_VERSION {
            return Err(ImportError::Schema(format!(
                "config.bson: auth2's storage schema is {version}; this import reads schema {SCHEMA_VERSION} (auth2 0.4 to 0.7)"
            )));
        }
        if document.get_bool("inupdate").ok() == Some(true) {
            return Err(ImportError::Schema(
                "config.bson: the dump was taken while auth2 was upgrading its storage; take it again".into(),
            ));
        }
    }
    Ok(())
}

/// A document that does not fit: its collection, id and why.
type Bad = (&'static str, String, String);

/// The settings the three collections hold (what they leave out keeps
/// auth2's default, which is this service's), and the documents that do not fit.
pub fn settings(app: &[Document], prov: &[Document], ext: &[Document]) -> (ServerSettings, Vec<Bad>) {
    let mut settings = ServerSettings::default();
    let mut bad = Vec::new();
    for document in app {
        let id = document_id(document, "key");
        match setting(document).and_then(|(key, value)| app_setting(&mut settings, &key, &value)) {
            Ok(()) => {}
            Err(why) => bad.push(("config_app", id, why)),
        }
    }
    for document in prov {
        let id = document_id(document, "key");
        match provider_switch(document) {
            Ok((provider, key, value)) => {
                let switches = settings.providers.entry(provider).or_default();
                match key.as_str() {
                    "enabled" => switches.enabled = value,
                    "loginchoice" => switches.force_login_choice = value,
                    "linkchoice" => switches.force_link_choice = value,
                    other => bad.push(("config_prov", id, format!("unknown provider switch `{other}`"))),
                }
            }
            Err(why) => bad.push(("config_prov", id, why)),
        }
    }
    for document in ext {
        let id = document_id(document, "key");
        match setting(document).and_then(|(key, value)| ext_setting(&mut settings, &key, &value)) {
            Ok(()) => {}
            Err(why) => bad.push(("config_ext", id, why)),
        }
    }
    (settings, bad)
}

fn app_setting(settings: &mut ServerSettings, key: &str, value: &Bson) -> Result<(), String> {
    let millis = || match value {
        Bson::Int64(v) if *v > 0 => Ok(*v),
        Bson::Int32(v) if *v > 0 => Ok(i64::from(*v)),
        other => Err(format!("`{key}` is {other}, not a positive number of milliseconds")),
    };
    match key {
        "allowlogin" => match value {
            Bson::Boolean(b) => settings.allow_login = *b,
            other => return Err(format!("`allowlogin` is {other}, not a boolean")),
        },
        "tokenlifecache" => settings.suggested_cache_ms = millis()?,
        "tokenlifelogin" => settings.token_lifetimes.login = millis()?,
        "tokenlifeagent" => settings.token_lifetimes.agent = millis()?,
        "tokenlifedev" => settings.token_lifetimes.dev = millis()?,
        "tokenlifeserv" => settings.token_lifetimes.serv = millis()?,
        other => return Err(format!("unknown setting `{other}`")),
    }
    Ok(())
}

/// `config_ext`: the redirect URLs (an alternate environment's as `<env>-<key>`) and two switches.
fn ext_setting(settings: &mut ServerSettings, key: &str, value: &Bson) -> Result<(), String> {
    let Bson::String(text) = value else {
        return Err(format!("`{key}` is {value}, not a string"));
    };
    let switch = || match text.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{key}` is `{other}`, not true or false")),
    };
    match key {
        "ignoreIPHeaders" => settings.ignore_ip = switch()?,
        "includeStackTraceInResponse" => settings.show_stack = switch()?,
        _ => {
            let (environment, url_key) = match key.split_once('-') {
                Some((environment, rest)) => (Some(environment), rest),
                None => (None, key),
            };
            let urls = match environment {
                None => &mut settings.redirects,
                Some(environment) => settings.environments.entry(environment.to_owned()).or_default(),
            };
            let url = Some(text.clone());
            match url_key {
                "allowedPostLoginRedirectPrefix" => urls.allowed_login = url,
                "completeLoginRedirect" => urls.complete_login = url,
                "postLinkRedirect" => urls.post_link = url,
                "completeLinkRedirect" => urls.complete_link = url,
                other => return Err(format!("unknown setting `{other}`")),
            }
        }
    }
    Ok(())
}
