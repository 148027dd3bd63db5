//! The `Audit` aggregate (one per reader, by user name): reading the audit
//! trail, reading past state, and translating anonymous ids are themselves
//! recorded, so an auditor can answer "who looked at alice's history, and who
//! unmasked this anonymous id?". One aggregate per reader keeps concurrent
//! readers from contending.

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::AuthError;
use super::names::UserName;

/// A read of the audit trail: the history of `subject`, between `since` and
/// `until` (log times), of events caused by `actor` and of `event_type` when
/// given (these two since v2.0), read at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailRead {
    pub subject: AuditSubject,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    pub at: i64,
}

/// Whose history was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditSubject {
    All,
    User(UserName),
    Token(Uuid),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum AuditEvent {
    /// The reader asked for a part of the history.
    AuditTrailRead(TrailRead),
    /// The reader asked for `user`'s state as of `as_of`.
    StateAsOfRead { user: UserName, as_of: i64, at: i64 },
    /// The reader translated these anonymous ids into user names.
    AnonIdsTranslated { anon_ids: Vec<Uuid>, at: i64 },
}

domain_event!(AuditEvent, |event| match event {
    Self::AuditTrailRead(_) => AUDIT_TRAIL_READ_VERSION,
    Self::StateAsOfRead { .. } | Self::AnonIdsTranslated { .. } => "1.0",
});

/// `AuditTrailRead` 2.0 added the `actor` and `event_type` filters.
pub const AUDIT_TRAIL_READ_VERSION: &str = "2.0";

/// `AuditTrailRead` 1.0 → 2.0: a read recorded before the filters existed
/// used none.
pub fn upcast_audit_trail_read_v1(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(read) = payload.get_mut("AuditTrailRead").and_then(serde_json::Value::as_object_mut) {
        read.entry("actor").or_insert(serde_json::Value::Null);
        read.entry("event_type").or_insert(serde_json::Value::Null);
    }
    payload
}

/// A read to record; each records the event of the same name.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditCommand {
    ReadAuditTrail(TrailRead),
    ReadStateAsOf { user: UserName, as_of: i64, at: i64 },
    TranslateAnonIds { anon_ids: Vec<Uuid>, at: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Audit;

impl Aggregate for Audit {
    const TYPE: &'static str = "Audit";
    type Command = AuditCommand;
    type Event = AuditEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: AuditCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = match command {
            AuditCommand::ReadAuditTrail(read) => AuditEvent::AuditTrailRead(read),
            AuditCommand::ReadStateAsOf { user, as_of, at } => AuditEvent::StateAsOfRead { user, as_of, at },
            AuditCommand::TranslateAnonIds { anon_ids, at } => AuditEvent::AnonIdsTranslated { anon_ids, at },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _: AuditEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn a_read_recorded_before_the_filters_reads_with_none() {
        use crate::domain::{LedgerEvent, LogEvent};
        let v1 = r#"{"AuditTrailRead":{"subject":"All","since":null,"until":5,"at":7}}"#;
        let decoded = LedgerEvent::decode("Audit", "AuditTrailRead", "1.0", v1, &crate::domain::upcasters());
        let expected = AuditEvent::AuditTrailRead(TrailRead {
            subject: AuditSubject::All,
            since: None,
            until: Some(5),
            actor: None,
            event_type: None,
            at: 7,
        });
        assert_eq!(decoded.ok(), Some(LedgerEvent::Audit(expected)));
    }

    #[tokio::test]
    async fn every_read_is_recorded() {
        TestFramework::<Audit>::with(())
            .given_no_previous_events()
            .when_async(AuditCommand::TranslateAnonIds { anon_ids: vec![Uuid::from_u128(9)], at: 5 })
            .await
            .then_expect_events(vec![AuditEvent::AnonIdsTranslated { anon_ids: vec![Uuid::from_u128(9)], at: 5 }]);
    }
}
