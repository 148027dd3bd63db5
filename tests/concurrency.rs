//! Commands that race on one aggregate: the loser is retried on fresh state,
//! so two commands never both win, and compatible commands both land.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use authledger::app::AppError;
use authledger::app::ledger::Ledger;
use authledger::clock::SystemClock;
use authledger::domain::token::{ClientInfo, Mfa, RevocationReason, TokenIssued};
use authledger::domain::user::NewPassword;
use authledger::domain::{Actor, DisplayName, ErrorType, Role, TokenCommand, TokenKind, UserCommand, UserName};
use authledger::domain::{Token, User};
use authledger::store::EventMetadata;
use common::TestStore;
use uuid::Uuid;

fn name(n: &str) -> UserName {
    UserName::parse(Some(n)).expect("a valid name")
}

fn create(user: &str) -> UserCommand {
    UserCommand::Create {
        user: name(user),
        display: DisplayName::parse(Some("Someone")).expect("valid"),
        email: None,
        anon_id: Uuid::new_v4(),
        created: 1,
        by: UserName::root(),
        password: Some(NewPassword {
            credential_id: Uuid::new_v4(),
            require_reset: false,
            by: UserName::root(),
            at: 1,
        }),
    }
}

async fn racing_commands(store: TestStore) {
    let options = store.options();
    let ledger = Arc::new(Ledger::open(options, Arc::new(SystemClock)).await.expect("opens"));
    let meta = EventMetadata::actor("test");

    // Eight racing creations of one user: exactly one wins, the rest see it exists.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let ledger = ledger.clone();
        let meta = meta.clone();
        tasks.push(tokio::spawn(async move { ledger.execute::<User>(&name("carol"), create("carol"), &meta).await }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(Some(_)) => created += 1,
            Err(AppError::Rejected(e)) => assert_eq!(e.kind, ErrorType::UserAlreadyExists),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);

    // Racing grants of different roles on the same user all land (retried on fresh state).
    let admin = Actor { name: name("alice"), roles: BTreeSet::from([Role::Admin, Role::CreateAdmin]) };
    let mut tasks = Vec::new();
    for role in [Role::DevToken, Role::ServToken, Role::Admin] {
        let ledger = ledger.clone();
        let meta = meta.clone();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let command =
                UserCommand::UpdateRoles { add: BTreeSet::from([role]), remove: BTreeSet::new(), actor: admin, at: 2 };
            ledger.execute::<User>(&name("carol"), command, &meta).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("each grant lands");
    }
    let roles = ledger.projections.read().users.get(&name("carol")).map(|u| u.roles.clone()).unwrap_or_default();
    assert_eq!(roles, BTreeSet::from([Role::Admin, Role::DevToken, Role::ServToken]));

    // Racing revocations of one token: exactly one revokes, the others find it gone.
    for round in 0..5 {
        let id = Uuid::new_v4();
        let grant = TokenIssued {
            token_hash: format!("{round:0>43}="),
            kind: TokenKind::Agent,
            user: name("carol"),
            name: None,
            created: 1,
            expires: i64::MAX,
            custom: Default::default(),
            client: ClientInfo::default(),
            mfa: Mfa::Unknown,
        };
        ledger.execute::<Token>(id, TokenCommand::Issue(Box::new(grant)), &meta).await.expect("issued");
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let ledger = ledger.clone();
            let meta = meta.clone();
            tasks.push(tokio::spawn(async move {
                let command = TokenCommand::Revoke { by: name("carol"), reason: RevocationReason::Revoked, at: 3 };
                ledger.execute::<Token>(id, command, &meta).await
            }));
        }
        let mut revoked = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(Some(_)) => revoked += 1,
                Err(AppError::Rejected(e)) => assert_eq!(e.kind, ErrorType::NoSuchToken),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(revoked, 1, "round {round}");
    }
    ledger.close().await;
    store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_racing_commands_never_both_win() {
    racing_commands(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_racing_commands_never_both_win() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    racing_commands(store).await;
}
