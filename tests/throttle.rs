//! Wrong passwords, as an attacker tries them: a check is counted before its
//! password is checked, so bursts released at once get no more checks than
//! the counts allow — per client of an account (five), per account for
//! clients without a device mark (twenty), per address over every name
//! (twenty), across servers on one PostgreSQL — and names that are no
//! account are counted alike. A client that logged in before (its device
//! mark) gets in while an attack goes on. Password checks run a few at a
//! time; the rest wait in a bounded queue, then get 503. On both stores.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use authledger::app::passwords::{PasswordWorkSettings, REFUSAL_DELAY};
use authledger::clock::{Clock, ManualClock};
use authledger::server::{Server, ServerOptions};
use common::{Answer, Harness, TEST_EPOCH, TestStore, USER_PASSWORD};
use serde_json::{Value, json};

const CAP_MS: i64 = 15 * 60 * 1000;

/// Four checks at once, sixty-four waiting, and time enough to wait: the
/// figures a burst is measured against, whatever the machine.
fn bounded(options: &mut ServerOptions) {
    options.ledger.password_work =
        PasswordWorkSettings { at_once: 4, queue: 64, wait: Duration::from_secs(60), refusal_delay: REFUSAL_DELAY };
}

async fn manual_with(store: TestStore, tune: impl FnOnce(&mut ServerOptions)) -> Harness {
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::start_with(store, shared, |o| {
        bounded(o);
        tune(o);
    })
    .await;
    h.manual = Some(clock);
    h
}

async fn manual(store: TestStore) -> Harness {
    manual_with(store, |_| {}).await
}

/// A password login of `user`, from the forwarded address `from` (the
/// harness's client is on loopback, a trusted proxy) with the device-mark
/// cookie `marks`.
fn login_request(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    from: Option<&str>,
    marks: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(format!("{base}/localaccount/login"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(json!({"user": user, "pwd": password}).to_string());
    if let Some(from) = from {
        request = request.header("X-Forwarded-For", from);
    }
    if let Some(marks) = marks {
        request = request.header("Cookie", format!("authledger_device={marks}"));
    }
    request
}

async fn attempt(h: &Harness, user: &str, password: &str) -> Answer {
    h.send(login_request(&h.http, &h.base, user, password, None, None)).await
}

async fn attempt_from(h: &Harness, user: &str, password: &str, from: &str, marks: Option<&str>) -> Answer {
    h.send(login_request(&h.http, &h.base, user, password, Some(from), marks)).await
}

fn throttled_message(until: i64) -> String {
    format!("10000 Authentication failed: too many wrong passwords; the next attempt is possible at {until} (epoch ms)")
}

fn is_throttled(answer: &Answer) -> bool {
    answer.status == 401 && answer.text.contains("too many wrong passwords")
}

/// The device marks a login's answer sets.
fn marks_of(answer: &Answer) -> String {
    let cookie = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("authledger_device="))
        .expect("a device-mark cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Path=/localaccount"), "{cookie}");
    cookie.trim_start_matches("authledger_device=").split(';').next().unwrap_or_default().to_owned()
}

/// The `PasswordCheckReserved` events of the log.
async fn reservations(h: &Harness) -> Vec<Value> {
    h.store.payloads("PasswordCheckReserved").await
}

/// `count` logins sent at once (each task waits at a barrier first), the
/// `n`th made by `request(n)`; their answers. A connection never drops.
async fn burst(
    h: &Harness,
    count: usize,
    request: impl Fn(&reqwest::Client, &str, usize) -> reqwest::RequestBuilder,
) -> Vec<Answer> {
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let (barrier, sent) = (barrier.clone(), request(&h.http, &h.base, n));
            tokio::spawn(async move {
                barrier.wait().await;
                let response = sent.send().await.expect("answered: no dropped connection");
                let (status, headers) = (response.status(), response.headers().clone());
                Answer { status, headers, text: response.text().await.expect("a body") }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the task ran"));
    }
    answers
}

/// Every answer of a burst is a 401 (a wrong password, or throttled) or a
/// 503 in the envelope with `Retry-After`; nothing else.
fn assert_answered_within_the_rules(answers: &[Answer]) {
    for answer in answers {
        match answer.status.as_u16() {
            401 => {}
            503 => {
                assert_eq!(answer.header("retry-after").as_deref(), Some("1"), "{}", answer.text);
                assert_eq!(answer.json()["error"]["httpcode"], json!(503), "{}", answer.text);
            }
            other => panic!("a burst answered {other}: {}", answer.text),
        }
    }
}

async fn wrong_passwords_make_a_client_wait_up_to_the_cap(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "alice").await;
    for _ in 0..4 {
        attempt(&h, "alice", "wrong").await.assert_error(401, "10050 Password / username mismatch: alice");
    }
    assert_eq!(attempt(&h, "alice", USER_PASSWORD).await.status, 200, "four wrong passwords cost nothing");
    for _ in 0..5 {
        attempt(&h, "alice", "wrong").await.assert_error(401, "10050 Password / username mismatch: alice");
    }
    // The fifth in a row: no password is checked for a second — not even the right one.
    let until = h.now() + 1000;
    let before = reservations(&h).await.len();
    let asked = std::time::Instant::now();
    attempt(&h, "alice", USER_PASSWORD).await.assert_error(401, &throttled_message(until));
    assert!(asked.elapsed() >= REFUSAL_DELAY, "a refusal is answered after its delay, not at once");
    attempt(&h, "alice", "wrong").await.assert_error(401, &throttled_message(until));
    let reset = json!({"user": "alice", "pwdold": USER_PASSWORD, "pwdnew": "another fine passphrase 99"});
    h.post("/localaccount/reset", None, reset).await.assert_error(401, &throttled_message(until));
    assert_eq!(reservations(&h).await.len(), before, "refused attempts check and record nothing");
    h.advance(1000);
    assert_eq!(attempt(&h, "alice", USER_PASSWORD).await.status, 200, "the wait is over; the right password ends it");

    // The wait doubles with each failure and stops at fifteen minutes.
    let mut waits = Vec::new();
    for _ in 0..16 {
        attempt(&h, "alice", "wrong").await.assert_error(401, "10050 Password / username mismatch: alice");
        let reserved = reservations(&h).await;
        let last = &reserved[reserved.len() - 1];
        assert!(last["source"]["address"].is_string(), "{last}");
        let wait = last["throttled_until"].as_i64().map_or(0, |until| until - h.now());
        waits.push(wait);
        h.advance(wait);
    }
    assert_eq!(&waits[..4], &[0, 0, 0, 0]);
    assert_eq!(&waits[4..8], &[1000, 2000, 4000, 8000]);
    assert_eq!(&waits[14..], &[CAP_MS, CAP_MS], "capped");
    // The admin page shows it; the person gets in once the cap has passed.
    let page = h.page("/admin/user/alice", Some(&format!("kbase_session={admin}"))).await;
    // Account-wide, the wrong ones stand (4 + 5 + 16): logins take back only their own checks.
    assert!(page.text.contains("25 from clients without a device mark"), "{}", page.text);
    assert_eq!(attempt(&h, "alice", USER_PASSWORD).await.status, 200);
    // No address reached the log: sources are keyed digests.
    assert!(!h.store.payloads("PasswordCheckReserved").await.iter().any(|e| e.to_string().contains("127.0.0.1")));
    h.finish().await;
}

/// Sixty-four wrong passwords released at once against a fresh account: five
/// are checked, each counted once, the rest wait or are refused.
async fn a_burst_against_one_account_gets_five_checks(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "bob").await;
    let (runs, before) = (h.server.ledger.password_work.runs(), reservations(&h).await.len());
    let answers = burst(&h, 64, |http, base, _| login_request(http, base, "bob", "wrong", None, None)).await;
    assert_answered_within_the_rules(&answers);
    let checked = answers.iter().filter(|a| a.text.contains("10050")).count();
    if checked != 5 {
        eprintln!("DEBUG reservations {:?}", &reservations(&h).await[before..]);
        eprintln!("DEBUG runs {}", h.server.ledger.password_work.runs() - runs);
    }
    assert_eq!(checked, 5, "five checks");
    assert_eq!(h.server.ledger.password_work.runs() - runs, 5, "five argon2 runs");
    let counts: BTreeSet<i64> =
        reservations(&h).await[before..].iter().filter_map(|e| e["failures"].as_i64()).collect();
    assert_eq!(counts, BTreeSet::from([1, 2, 3, 4, 5]), "each counted once, in order");
    assert!(h.server.ledger.password_work.most_at_once() <= 4, "a few at a time");
    h.finish().await;
}

/// 256 simultaneous wrong passwords for names that are no account, from one
/// address: the address's twenty are checked, every request is answered.
/// A name that is no account waits exactly as an account does.
async fn names_that_are_no_account_are_counted_as_accounts_are(store: TestStore) {
    let h = manual(store).await;
    let runs = h.server.ledger.password_work.runs();
    let answers = burst(&h, 256, |http, base, n| {
        login_request(http, base, &format!("nobody{n}"), "wrong", Some("198.51.100.7"), None)
    })
    .await;
    assert_answered_within_the_rules(&answers);
    assert_eq!(h.server.ledger.password_work.runs() - runs, 20, "the address's twenty checks, no more");
    assert!(h.server.ledger.password_work.most_at_once() <= 4);
    // One name that is no account: five, then the same wait an account gets.
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "erin").await;
    for name in ["erin", "ghost"] {
        for _ in 0..5 {
            attempt_from(&h, name, "wrong", "203.0.113.9", None)
                .await
                .assert_error(401, &format!("10050 Password / username mismatch: {name}"));
        }
        attempt_from(&h, name, "wrong", "203.0.113.9", None)
            .await
            .assert_error(401, &throttled_message(h.now() + 1000));
    }
    h.finish().await;
}

/// Many guessers (here, forwarded addresses) make every client without a
/// device mark wait; the owner's browser that logged in before gets in all
/// the while, and the guessers still get no more checks than the counts allow.
async fn the_owner_with_a_device_mark_gets_in_while_an_attack_goes_on(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "carol").await;
    let first = attempt_from(&h, "carol", USER_PASSWORD, "192.0.2.1", None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let marks = marks_of(&first);
    let runs = h.server.ledger.password_work.runs();
    // Thirty addresses, two guesses each, all at once.
    let answers = burst(&h, 60, |http, base, n| {
        login_request(http, base, "carol", "wrong", Some(&format!("203.0.113.{}", n / 2)), None)
    })
    .await;
    assert_answered_within_the_rules(&answers);
    assert_eq!(h.server.ledger.password_work.runs() - runs, 20, "the account-wide twenty, no more");
    // Anyone without the mark waits — the owner on a new device too — and a forged mark is no mark.
    assert!(is_throttled(&attempt_from(&h, "carol", USER_PASSWORD, "192.0.2.2", None).await));
    let forged = marks.replace(marks.split('.').nth(1).unwrap_or_default(), "AAAAAAAAAAAAAAAAAAAAAA");
    assert!(is_throttled(&attempt_from(&h, "carol", USER_PASSWORD, "192.0.2.3", Some(&forged)).await));
    // The owner's known browser gets in, from anywhere, and keeps its device.
    let again = attempt_from(&h, "carol", USER_PASSWORD, "192.0.2.99", Some(&marks)).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let renewed = marks_of(&again);
    assert_eq!(renewed.split('.').nth(1), marks.split('.').nth(1), "the same device id");
    // The owner's login gave the guessers no fresh count: a new one still waits, unchecked.
    let runs = h.server.ledger.password_work.runs();
    assert!(is_throttled(&attempt_from(&h, "carol", "wrong", "203.0.113.200", None).await));
    assert_eq!(h.server.ledger.password_work.runs(), runs);
    h.finish().await;
}

/// A device's own wrong passwords are counted apart: five, then it waits;
/// clients without a mark are not slowed by them.
async fn a_device_counts_its_own_wrong_passwords(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "fay").await;
    let marks = marks_of(&attempt(&h, "fay", USER_PASSWORD).await);
    for _ in 0..5 {
        attempt_from(&h, "fay", "typo", "192.0.2.1", Some(&marks))
            .await
            .assert_error(401, "10050 Password / username mismatch: fay");
    }
    assert!(is_throttled(&attempt_from(&h, "fay", USER_PASSWORD, "192.0.2.1", Some(&marks)).await));
    let device = reservations(&h).await.last().cloned().expect("reserved");
    assert!(device["source"]["device"].is_string() && device["account_failures"].is_null(), "{device}");
    assert_eq!(attempt_from(&h, "fay", USER_PASSWORD, "192.0.2.2", None).await.status, 200, "unmarked clients go on");
    h.finish().await;
}

async fn an_admin_clears_the_counts(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "gus").await;
    let alice = h.user_token(&admin, "alice").await;
    for _ in 0..6 {
        attempt(&h, "gus", "wrong").await;
    }
    assert!(is_throttled(&attempt(&h, "gus", USER_PASSWORD).await));
    h.post("/admin/user/gus/unlock", Some(&alice), json!({})).await.assert_error(403, "20000 Unauthorized");
    let cleared = h.post("/admin/user/gus/unlock", Some(&admin), json!({})).await;
    assert_eq!(cleared.status, 204, "{}", cleared.text);
    assert_eq!(attempt(&h, "gus", USER_PASSWORD).await.status, 200);
    let history = h.get("/api/V2/admin/audit?user=gus&limit=1000", Some(&admin)).await.json();
    let cleared: Vec<&Value> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == "LoginThrottleCleared")
        .collect();
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["actor"], json!("admin"));
    h.finish().await;
}

async fn one_address_spraying_many_names_waits(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "hal").await;
    // Twenty wrong passwords over twenty names (none of them real): none is throttled on its own.
    for n in 0..20 {
        attempt(&h, &format!("nobody{n}"), "wrong")
            .await
            .assert_error(401, &format!("10050 Password / username mismatch: nobody{n}"));
    }
    // The address is: even a real account's right password waits.
    attempt(&h, "hal", USER_PASSWORD).await.assert_error(401, &throttled_message(h.now() + 1000));
    h.advance(1000);
    assert_eq!(attempt(&h, "hal", USER_PASSWORD).await.status, 200);
    h.finish().await;
}

/// A right password that does not end in a login (a reset still to make)
/// gives its check back: retrying it never throttles.
async fn a_right_password_gives_its_check_back(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    let created = h
        .post("/admin/localaccount/create", Some(&admin), json!({"user": "ida", "display": "Ida", "email": "i@x.org"}))
        .await;
    let temporary = created.json()["pwd"].as_str().expect("a temporary password").to_owned();
    let released = h.store.payloads("PasswordCheckReleased").await.len();
    for _ in 0..8 {
        let answer = attempt(&h, "ida", &temporary).await;
        assert_eq!(answer.status, 403, "the reset is still to make, never a throttle: {}", answer.text);
    }
    assert_eq!(h.store.payloads("PasswordCheckReleased").await.len(), released + 8);
    h.finish().await;
}

/// With one check at a time and two waiting, a burst beyond them is answered
/// 503 with `Retry-After`, in the envelope; the server goes on serving.
async fn a_full_queue_answers_busy(store: TestStore) {
    let h = manual_with(store, |o| {
        o.ledger.password_work.at_once = 1;
        o.ledger.password_work.queue = 2;
        o.ledger.password_work.wait = Duration::from_secs(30);
    })
    .await;
    let answers = burst(&h, 24, |http, base, n| {
        login_request(http, base, &format!("nobody{n}"), "wrong", Some(&format!("198.51.100.{n}")), None)
    })
    .await;
    assert_answered_within_the_rules(&answers);
    let busy = answers.iter().filter(|a| a.status == 503).count();
    assert!(busy >= 20, "at most one running and two waiting: {busy} busy");
    assert!(answers.iter().any(|a| a.text.contains("10050")), "the first ones were checked");
    assert_eq!(h.get("/", None).await.status, 200, "still serving");
    h.finish().await;
}

crate::on_both_stores_from_store!(
    wrong_passwords_make_a_client_wait_up_to_the_cap,
    a_burst_against_one_account_gets_five_checks,
    names_that_are_no_account_are_counted_as_accounts_are,
    the_owner_with_a_device_mark_gets_in_while_an_attack_goes_on,
    a_device_counts_its_own_wrong_passwords,
    an_admin_clears_the_counts,
    one_address_spraying_many_names_waits,
    a_right_password_gives_its_check_back,
    a_full_queue_answers_busy,
);

/// Two servers on one PostgreSQL log: thirty-two guesses split over both,
/// released at once, get five checks in all (the account's count is in the
/// log); and an address's twenty hold across them (the throttle store is shared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counts_hold_across_servers_on_one_postgresql() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::start_with(store.clone(), shared.clone(), bounded).await;
    h.manual = Some(clock);
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "jo").await;
    let mut options = store.server_options();
    bounded(&mut options);
    let other = Server::start(options, shared, "127.0.0.1:0").await.expect("a second server");
    let bases = [h.base.clone(), format!("http://{}", other.addr)];
    let runs = |h: &Harness| h.server.ledger.password_work.runs() + other.ledger.password_work.runs();
    let before = runs(&h);
    let answers = burst(&h, 32, |http, _, n| login_request(http, &bases[n % 2], "jo", "wrong", None, None)).await;
    assert_answered_within_the_rules(&answers);
    assert_eq!(runs(&h) - before, 5, "five checks over both servers");
    let before = runs(&h);
    let answers = burst(&h, 64, |http, _, n| {
        login_request(http, &bases[n % 2], &format!("nobody{n}"), "wrong", Some("198.51.100.77"), None)
    })
    .await;
    assert_answered_within_the_rules(&answers);
    assert_eq!(runs(&h) - before, 20, "an address's twenty over both servers");
    other.stop().await.expect("stops");
    h.finish().await;
}
