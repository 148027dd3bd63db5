//! auth2's documents (`lib/storage/mongo/MongoStorage.java`, `Fields.java`)
//! read into this service's values, each checked as this service checks its
//! own input. A document that does not fit is refused with why.

use std::collections::{BTreeMap, BTreeSet};

use bson::{Bson, Document};
use uuid::Uuid;

use crate::app::legacy_password;
use crate::domain::imported::{ImportedAccount, ImportedToggle};
use crate::domain::names::parse_custom_context;
use crate::domain::token::{ClientInfo, Mfa, TokenIssued, TokenKind};
use crate::domain::{
    CustomRoleId, DisplayName, EmailAddress, IdentityId, PolicyId, RemoteIdentity, Role, TokenName, UserName,
};

/// A member of a document, read to its type; the error says which and why.
struct Fields<'a>(&'a Document);

impl<'a> Fields<'a> {
    fn value(&self, key: &str) -> Option<&'a Bson> {
        self.0.get(key).filter(|v| !matches!(v, Bson::Null | Bson::Undefined))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("`{key}` is {:?}, not a string", other.element_type())),
        }
    }

    fn required_string(&self, key: &str) -> Result<&'a str, String> {
        self.string(key)?.ok_or_else(|| format!("no `{key}`"))
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Bson::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("`{key}` is {:?}, not a boolean", other.element_type())),
        }
    }

    fn date(&self, key: &str) -> Result<Option<i64>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Bson::DateTime(at)) => Ok(Some(at.timestamp_millis())),
            Some(other) => Err(format!("`{key}` is {:?}, not a date", other.element_type())),
        }
    }

    fn required_date(&self, key: &str) -> Result<i64, String> {
        self.date(key)?.ok_or_else(|| format!("no `{key}`"))
    }

    fn array(&self, key: &str) -> Result<&'a [Bson], String> {
        match self.value(key) {
            None => Ok(&[]),
            Some(Bson::Array(items)) => Ok(items),
            Some(other) => Err(format!("`{key}` is {:?}, not an array", other.element_type())),
        }
    }

    fn documents(&self, key: &str) -> Result<Vec<Fields<'a>>, String> {
        self.array(key)?
            .iter()
            .map(|item| match item {
                Bson::Document(d) => Ok(Fields(d)),
                other => Err(format!("an item of `{key}` is {:?}, not a document", other.element_type())),
            })
            .collect()
    }
}

/// How a refused document is named in the report: its `_id`, else what it names.
pub fn document_id(document: &Document, key: &str) -> String {
    match document.get("_id") {
        Some(Bson::ObjectId(id)) => id.to_hex(),
        Some(other) => other.to_string(),
        None => document.get_str(key).map(str::to_owned).unwrap_or_else(|_| "(no _id)".to_owned()),
    }
}

/// A custom role of `cust_roles`.
pub struct CustomRoleDoc {
    /// The ObjectId users refer to it by, as hex.
    pub object_id: String,
    pub id: CustomRoleId,
    pub description: String,
}

/// A role of `cust_roles`, with the ObjectId users name it by.
pub fn custom_role(document: &Document) -> Result<CustomRoleDoc, String> {
    let fields = Fields(document);
    let object_id = match document.get("_id") {
        Some(Bson::ObjectId(id)) => id.to_hex(),
        _ => return Err("no ObjectId `_id` (users refer to roles by it)".into()),
    };
    let id = CustomRoleId::parse(Some(fields.required_string("id")?)).map_err(|e| e.to_string())?;
    let description = fields.string("desc")?.unwrap_or_default().to_owned();
    let description = crate::domain::names::parse_role_description(Some(&description)).map_err(|e| e.to_string())?;
    Ok(CustomRoleDoc { object_id, id, description })
}

/// A user of `users`, and what of it was dropped (not refused).
pub struct UserDoc {
    pub account: ImportedAccount,
    /// auth2's hash, in the form kept sealed (see [`legacy_password`]).
    pub password: Option<String>,
    pub notes: Vec<String>,
}

/// `roles` names custom roles by ObjectId (hex → id); a dangling one is dropped, as auth2 does.
pub fn user(document: &Document, roles: &BTreeMap<String, CustomRoleId>, source: &str) -> Result<UserDoc, String> {
    let fields = Fields(document);
    let name = UserName::parse(Some(fields.required_string("user")?)).map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let anon_id = match fields.string("anonid")? {
        Some(text) => Uuid::parse_str(text).map_err(|_| format!("`anonid` {text} is not a UUID"))?,
        None => {
            // Accounts older than auth2 0.6 have none until auth2 reads them; it makes one then, as here.
            notes.push("had no anonymous id (an account from before auth2 0.6): a new one was made".to_owned());
            Uuid::new_v4()
        }
    };
    let local = fields.boolean("lcl")?.ok_or("no `lcl`")?;
    let display = DisplayName::parse(Some(fields.required_string("display")?)).map_err(|e| e.to_string())?;
    let email = match fields.string("email")? {
        Some(text) => Some(EmailAddress::parse(Some(text)).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut built_in = BTreeSet::new();
    for role in fields.array("roles")? {
        let id = role.as_str().ok_or("an item of `roles` is not a string")?;
        let role = Role::from_id(id).ok_or_else(|| format!("unknown role `{id}`"))?;
        built_in.insert(role);
    }
    match (name.is_root(), built_in.contains(&Role::Root)) {
        (true, _) => built_in = BTreeSet::from([Role::Root]),
        (false, true) => return Err("holds Root but is not the root account".into()),
        (false, false) => {}
    }
    let mut custom_roles = BTreeSet::new();
    for role in fields.array("custrls")? {
        let Bson::ObjectId(object_id) = role else {
            return Err("an item of `custrls` is not an ObjectId".into());
        };
        match roles.get(&object_id.to_hex()) {
            Some(id) => {
                custom_roles.insert(id.clone());
            }
            None => notes.push(format!("custom role {} no longer exists: dropped, as auth2 does", object_id.to_hex())),
        }
    }
    let mut policy_ids = BTreeMap::new();
    for policy in fields.documents("policyids")? {
        let id = PolicyId::parse(Some(policy.required_string("id")?)).map_err(|e| e.to_string())?;
        let agreed = policy.required_date("agreed")?;
        policy_ids.entry(id).or_insert(agreed);
    }
    let mut identities = Vec::new();
    for identity in fields.documents("idents")? {
        identities.push(remote_identity(&identity)?);
    }
    if local && !identities.is_empty() {
        return Err("a local account with provider identities".into());
    }
    if !local && identities.is_empty() {
        return Err("an account of providers' identities with none".into());
    }
    let toggle = match (fields.string("dsbleadmin")?, fields.date("dsbledate")?, fields.string("dsblereas")?) {
        (None, None, None) => None,
        (Some(by), Some(at), reason) => Some(ImportedToggle {
            by: UserName::parse(Some(by)).map_err(|e| format!("`dsbleadmin`: {e}"))?,
            at,
            reason: reason.map(str::to_owned),
        }),
        _ => return Err("`dsbleadmin`, `dsbledate` and `dsblereas` do not fit together".into()),
    };
    let password = match (local, fields.string("pwdhsh")?, fields.string("salt")?) {
        (true, Some(hash), Some(salt)) => {
            Some(legacy_password::stored(salt, hash).map_err(|e| format!("`pwdhsh`/`salt`: {e}"))?)
        }
        (true, _, _) => return Err("a local account without `pwdhsh` and `salt`".into()),
        (false, _, _) => None,
    };
    let account = ImportedAccount {
        user: name,
        display,
        email,
        anon_id,
        local,
        created: fields.required_date("create")?,
        last_login: fields.date("login")?,
        roles: built_in,
        custom_roles,
        policy_ids,
        identities,
        toggle,
        reset_required: local && fields.boolean("rstpwd")?.unwrap_or(false),
        credential_id: None,
        password_set: fields.date("lastrst")?,
        source: source.to_owned(),
    };
    Ok(UserDoc { account, password, notes })
}

/// An identity of `idents`; its id must be auth2's (MD5 of provider and provider id).
fn remote_identity(identity: &Fields<'_>) -> Result<RemoteIdentity, String> {
    let provider = identity.required_string("prov")?;
    let provider_id = identity.required_string("prov_id")?;
    let username = identity.required_string("uid")?;
    let remote = RemoteIdentity::new(
        provider,
        provider_id,
        username,
        identity.string("fullname")?.map(str::to_owned),
        identity.string("email")?.map(str::to_owned),
    );
    let stated = identity.required_string("id")?;
    if IdentityId::named(stated) != remote.id {
        return Err(format!("identity {stated} is not the id of {provider} identity {provider_id}"));
    }
    Ok(remote)
}

/// A token of `tokens`, with its id.
pub fn token(document: &Document) -> Result<(Uuid, TokenIssued), String> {
    let fields = Fields(document);
    let kind = fields.required_string("type")?;
    let kind = TokenKind::from_id(kind).ok_or_else(|| format!("unknown token type `{kind}`"))?;
    let user = UserName::parse(Some(fields.required_string("user")?)).map_err(|e| e.to_string())?;
    let id = fields.required_string("id")?;
    let id = Uuid::parse_str(id).map_err(|_| format!("`id` {id} is not a UUID"))?;
    let name = match fields.string("name")? {
        Some(text) => Some(TokenName::parse(Some(text)).map_err(|e| e.to_string())?),
        None => None,
    };
    let token_hash = fields.required_string("token")?.to_owned();
    if crate::projections::token_index::decode_hash(&token_hash).is_none() {
        return Err("`token` is not the base64 of a SHA-256".into());
    }
    let mut custom = BTreeMap::new();
    for pair in fields.documents("custctx")? {
        custom.insert(pair.required_string("k")?.to_owned(), pair.required_string("v")?.to_owned());
    }
    let custom = parse_custom_context(&custom).map_err(|e| e.to_string())?;
    let text = |key: &str| fields.string(key).map(|v| v.map(str::to_owned));
    let client = ClientInfo {
        ip: text("ip")?,
        os: text("os")?,
        osver: text("osver")?,
        agent: text("agent")?,
        agentver: text("agentver")?,
        device: text("device")?,
    };
    let grant = TokenIssued {
        token_hash,
        kind,
        user,
        name,
        created: fields.required_date("create")?,
        expires: fields.required_date("expires")?,
        custom,
        client,
        // auth2 never recorded whether a login used a second factor.
        mfa: Mfa::Unknown,
    };
    Ok((id, grant))
}

/// One setting of `config_app` / `config_ext`: its key and value.
pub fn setting(document: &Document) -> Result<(String, Bson), String> {
    let fields = Fields(document);
    let key = fields.required_string("key")?.to_owned();
    let value = document.get("val").cloned().ok_or_else(|| format!("setting `{key}` has no `val`"))?;
    Ok((key, value))
}

/// One switch of `config_prov`: its provider, key and value.
pub fn provider_switch(document: &Document) -> Result<(String, String, bool), String> {
    let fields = Fields(document);
    let provider = fields.required_string("prov")?.to_owned();
    let key = fields.required_string("key")?.to_owned();
    let value = fields.boolean("val")?.ok_or_else(|| format!("switch `{key}` of {provider} is not a boolean"))?;
    Ok((provider, key, value))
}
