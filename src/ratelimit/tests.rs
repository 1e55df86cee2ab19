//! The limiter on tokio's paused clock.

use super::*;
use crate::config::{Environment, Settings};
use figment::Figment;
use prometheus::Registry;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::{Instant, advance};

const ACCOUNT: i64 = 5;
const CHAT: i64 = 777;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The defaults with `overrides` (dotted keys) on top.
fn limiter_with(overrides: &[(&str, u64)]) -> RateLimiter {
    let figment = overrides
        .iter()
        .fold(Figment::new(), |f, (k, v)| f.merge((*k, *v)));
    let settings = Settings::from_defaults(Environment::Test, figment).expect("settings");
    let metrics = RateLimitMetrics::new(&Registry::new()).expect("metrics");
    RateLimiter::new(&settings.rate_limits, metrics)
}

/// Account messages: `account` per `window`, `chat` per chat.
fn messages(window_ms: u64, account: u64, chat: u64) -> RateLimiter {
    limiter_with(&[
        ("rate_limits.telegram.messages_sent.window_ms", window_ms),
        ("rate_limits.telegram.messages_sent.max", account),
        ("rate_limits.telegram.messages_sent.per_chat", chat),
    ])
}

/// The largest number of `grants` in any window `[t, t + window)`.
fn busiest_window(grants: &[Instant], window: Duration) -> usize {
    let mut sorted = grants.to_vec();
    sorted.sort();
    // A window holding the most grants can be moved to start at one.
    (0..sorted.len())
        .map(|i| sorted[i..].partition_point(|g| *g < sorted[i] + window))
        .max()
        .unwrap_or(0)
}

fn decisions(l: &RateLimiter, limit: Limit, result: &str) -> u64 {
    l.metrics()
        .decisions
        .with_label_values(&[limit.as_str(), result])
        .get()
}

#[actix_rt::test]
async fn the_limit_holds_in_every_sliding_window_and_refuses_only_when_full() {
    tokio::time::pause();
    let l = limiter_with(&[
        ("rate_limits.api.standard.window_ms", 1_000),
        ("rate_limits.api.standard.max", 5),
    ]);
    let key = Key::api(1);
    let window = ms(1_000);
    let mut rng = SmallRng::seed_from_u64(0x7e57);
    let mut grants = Vec::new();
    let mut refusals = 0;
    for _ in 0..5_000 {
        // Bursts (no time passes) and gaps up to most of a window.
        if rng.random_bool(0.6) {
            advance(ms(rng.random_range(0..400))).await;
        }
        let now = Instant::now();
        match l.check(&key) {
            Ok(_) => grants.push(now),
            Err(t) => {
                refusals += 1;
                let in_window = grants.iter().filter(|g| **g + window > now).count();
                assert_eq!(in_window, 5, "refused with room left");
                let oldest = grants[grants.len() - 5];
                assert_eq!(t.retry_after, oldest + window - now);
                assert!(!t.blocked);
            }
        }
    }
    assert_eq!(busiest_window(&grants, window), 5);
    assert!(refusals > 500, "the test drove the limit: {refusals}");
    assert!(grants.len() > 1_000, "and it granted: {}", grants.len());
}

#[actix_rt::test]
async fn mixed_checks_and_reservations_over_account_and_chats_never_overbook() {
    tokio::time::pause();
    let l = messages(1_000, 6, 3);
    let window = ms(1_000);
    let account = Key::account_messages(ACCOUNT);
    let chats = [
        Key::chat_messages(ACCOUNT, 1),
        Key::chat_messages(ACCOUNT, 2),
    ];
    let mut log: HashMap<Key, Vec<Instant>> = HashMap::new();
    let mut rng = SmallRng::seed_from_u64(42);
    let mut reserved_ahead = 0;
    for _ in 0..3_000 {
        if rng.random_bool(0.5) {
            advance(ms(rng.random_range(0..300))).await;
        }
        let now = Instant::now();
        let chat = chats[rng.random_range(0..2)].clone();
        let pair = [account.clone(), chat];
        match rng.random_range(0..10) {
            0..=5 => {
                if l.check_all(&pair).is_ok() {
                    pair.iter()
                        .for_each(|k| log.entry(k.clone()).or_default().push(now));
                }
            }
            6..=7 => {
                if l.check(&account).is_ok() {
                    log.entry(account.clone()).or_default().push(now);
                }
            }
            _ => {
                let wait = l.reserve(&pair);
                reserved_ahead += usize::from(!wait.is_zero());
                pair.iter()
                    .for_each(|k| log.entry(k.clone()).or_default().push(now + wait));
            }
        }
    }
    assert!(
        reserved_ahead > 50,
        "slots were booked ahead: {reserved_ahead}"
    );
    assert_eq!(busiest_window(&log[&account], window), 6);
    for chat in &chats {
        assert_eq!(busiest_window(&log[chat], window), 3, "{chat}");
    }
}

#[actix_rt::test]
async fn at_the_window_edge_a_slot_frees_exactly_when_the_oldest_grant_leaves() {
    tokio::time::pause();
    let l = messages(1_000, 3, 3);
    let key = Key::account_messages(ACCOUNT);
    assert_eq!(l.check(&key), Ok(2));
    assert_eq!(l.check(&key), Ok(1));
    assert_eq!(l.check(&key), Ok(0));

    advance(ms(999)).await;
    let refused = l.check(&key).unwrap_err();
    assert_eq!(
        refused,
        Throttled {
            retry_after: ms(1),
            blocked: false,
            limit: Limit::AccountMessages
        }
    );

    advance(ms(1)).await;
    assert_eq!(l.check(&key), Ok(2), "at t0 + window exactly");
    assert_eq!(l.check(&key), Ok(1));
    assert_eq!(l.check(&key), Ok(0));
    assert_eq!(l.check(&key).unwrap_err().retry_after, ms(1_000));
    assert_eq!(decisions(&l, Limit::AccountMessages, "allowed"), 6);
    assert_eq!(decisions(&l, Limit::AccountMessages, "throttled"), 2);
}

#[actix_rt::test]
async fn check_all_takes_a_slot_on_every_key_or_on_none() {
    tokio::time::pause();
    let l = messages(60_000, 3, 2);
    let account = Key::account_messages(ACCOUNT);
    let chat = |c| Key::chat_messages(ACCOUNT, c);
    l.check_all(&[account.clone(), chat(1)]).unwrap();
    advance(ms(10_000)).await;
    l.check_all(&[account.clone(), chat(1)]).unwrap();

    // The chat is full: refused, and the account keeps its slot.
    let refused = l.check_all(&[account.clone(), chat(1)]).unwrap_err();
    assert_eq!(refused.limit, Limit::ChatMessages);
    assert_eq!(refused.retry_after, ms(50_000));
    assert!(!refused.blocked);
    assert_eq!(l.check_all(&[account.clone(), chat(2)]), Ok(()));

    // Now the account is full: another chat gets no slot either.
    let refused = l.check_all(&[account.clone(), chat(3)]).unwrap_err();
    assert_eq!(refused.limit, Limit::AccountMessages);
    assert!(
        l.snapshot(Some(ACCOUNT))
            .iter()
            .all(|k| k.subject != "chat:5:3")
    );
    assert_eq!(l.check(&chat(3)), Ok(1), "chat 3 untouched");

    // Both full: the answer is when both allow.
    advance(ms(10_000)).await;
    let refused = l.check_all(&[account.clone(), chat(1)]).unwrap_err();
    assert_eq!(refused.retry_after, ms(40_000), "when both allow");
    assert_eq!(l.ready_at(&[account, chat(1)]), Instant::now() + ms(40_000));
}

#[actix_rt::test]
async fn reserve_books_slots_in_order_with_increasing_waits() {
    tokio::time::pause();
    let l = messages(1_000, 3, 3);
    let key = Key::account_messages(ACCOUNT);
    let waits: Vec<Duration> = (0..10)
        .map(|_| l.reserve(std::slice::from_ref(&key)))
        .collect();
    let secs = |s: &[u64]| {
        s.iter()
            .map(|s| Duration::from_secs(*s))
            .collect::<Vec<_>>()
    };
    assert_eq!(waits, secs(&[0, 0, 0, 1, 1, 1, 2, 2, 2, 3]));
    let now = Instant::now();
    let booked: Vec<Instant> = waits.iter().map(|w| now + *w).collect();
    assert_eq!(busiest_window(&booked, ms(1_000)), 3);

    // Booked slots count as grants: nothing is free before the last window.
    assert!(l.check(&key).is_err());
    assert_eq!(
        l.ready_at(std::slice::from_ref(&key)),
        now + Duration::from_secs(3)
    );
    let waited = l
        .metrics()
        .wait_seconds
        .with_label_values(&["account_messages"])
        .get();
    assert!((waited - 12.0).abs() < 1e-9, "{waited}");
}

#[actix_rt::test]
async fn a_check_may_take_a_free_slot_before_one_booked_for_another_chat() {
    tokio::time::pause();
    let l = messages(1_000, 3, 1);
    let account = Key::account_messages(ACCOUNT);
    let chat = |c| Key::chat_messages(ACCOUNT, c);
    assert_eq!(l.reserve(&[account.clone(), chat(1)]), Duration::ZERO);
    assert_eq!(l.reserve(&[account.clone(), chat(1)]), ms(1_000));

    // Chat 1 waits; the account has room now for chat 2.
    assert_eq!(l.check_all(&[account.clone(), chat(2)]), Ok(()));
    let state = l
        .snapshot(Some(ACCOUNT))
        .into_iter()
        .find(|k| k.limit == Limit::AccountMessages)
        .unwrap();
    assert_eq!((state.used, state.remaining), (3, 0));
    assert_eq!(l.check(&account).unwrap_err().retry_after, ms(1_000));

    // The log stayed in order: at t0 + window both grants made at t0 leave,
    // the booked one stays, so exactly two more fit.
    advance(ms(1_000)).await;
    assert_eq!(l.check(&account), Ok(1));
    assert_eq!(l.check(&account), Ok(0));
    assert_eq!(l.check(&account).unwrap_err().retry_after, ms(1_000));
}

#[actix_rt::test]
async fn a_block_refuses_as_blocked_for_the_wait_plus_the_margin() {
    tokio::time::pause();
    let l = limiter_with(&[("rate_limits.flood_wait.margin_ms", 1_000)]);
    let account = Key::account_messages(ACCOUNT);
    l.block(&account, Duration::from_secs(10), "messages.sendMessage");

    let refused = l.check(&account).unwrap_err();
    assert_eq!(
        refused,
        Throttled {
            retry_after: Duration::from_secs(11),
            blocked: true,
            limit: Limit::AccountMessages
        }
    );
    let all = l
        .check_all(&[account.clone(), Key::chat_messages(ACCOUNT, CHAT)])
        .unwrap_err();
    assert!(all.blocked);
    assert_eq!(all.limit, Limit::AccountMessages);
    assert_eq!(
        l.blocked_until(&account),
        Some(Instant::now() + Duration::from_secs(11))
    );
    assert_eq!(
        l.reserve(std::slice::from_ref(&account)),
        Duration::from_secs(11)
    );

    advance(Duration::from_secs(11) - ms(1)).await;
    assert!(l.check(&account).unwrap_err().blocked);
    assert_eq!(l.blocked_keys(), 1);
    advance(ms(1)).await;
    assert_eq!(l.blocked_until(&account), None);
    assert_eq!(l.blocked_keys(), 0);
    assert!(l.check(&account).is_ok(), "the block is over");
    let m = l.metrics();
    assert_eq!(m.blocks.with_label_values(&["account_messages"]).get(), 1);
    assert_eq!(decisions(&l, Limit::AccountMessages, "blocked"), 4);
    assert_eq!(l.margin(), ms(1_000));
}

#[actix_rt::test]
async fn a_shorter_block_never_shortens_a_longer_one() {
    tokio::time::pause();
    let l = limiter_with(&[("rate_limits.flood_wait.margin_ms", 500)]);
    let key = Key::chat_messages(ACCOUNT, CHAT);
    let t0 = Instant::now();
    l.block(&key, Duration::from_secs(60), "messages.sendMessage");
    advance(Duration::from_secs(1)).await;
    l.block(&key, Duration::from_secs(5), "messages.sendMessage");
    assert_eq!(l.blocked_until(&key), Some(t0 + ms(60_500)));

    l.block(&key, Duration::from_secs(120), "messages.sendMessage");
    assert_eq!(l.blocked_until(&key), Some(t0 + ms(121_500)));
}

#[actix_rt::test]
async fn sweep_drops_idle_keys_and_keeps_blocked_ones() {
    tokio::time::pause();
    let l = messages(1_000, 3, 3);
    let blocked = Key::account_messages(1);
    let idle = Key::account_messages(2);
    let busy = Key::account_messages(3);
    l.block(&blocked, Duration::from_secs(60), "messages.sendMessage");
    l.check(&idle).unwrap();
    advance(ms(600)).await;
    l.check(&busy).unwrap();
    advance(ms(400)).await;

    assert_eq!(l.sweep(), 1, "only the idle key goes");
    let subjects: Vec<String> = l.snapshot(None).into_iter().map(|k| k.subject).collect();
    assert_eq!(subjects, ["account:1", "account:3"]);
    let gauge = |limit: &str| l.metrics().blocked_keys.with_label_values(&[limit]).get();
    assert_eq!(gauge("account_messages"), 1);

    advance(Duration::from_secs(61)).await;
    assert_eq!(l.sweep(), 2, "the block is over, the log is old");
    assert!(l.snapshot(None).is_empty());
    assert_eq!(gauge("account_messages"), 0);
}

#[actix_rt::test]
async fn the_flood_log_keeps_an_hour_per_account() {
    tokio::time::pause();
    let l = limiter_with(&[]);
    l.block(
        &Key::account_messages(ACCOUNT),
        ms(2_500),
        "messages.sendMessage",
    );
    advance(Duration::from_secs(30 * 60)).await;
    l.block(
        &Key::chat_messages(ACCOUNT, CHAT),
        Duration::from_secs(7),
        "messages.sendMedia",
    );
    l.block(
        &Key::account_messages(6),
        Duration::from_secs(1),
        "upload.saveFilePart",
    );
    l.block(&Key::api(1), Duration::from_secs(1), "none");

    let log = l.flood_waits(ACCOUNT);
    let seen: Vec<(u32, &str, &str)> = log
        .iter()
        .map(|r| (r.seconds, r.method.as_str(), r.scope.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (3, "messages.sendMessage", "account"),
            (7, "messages.sendMedia", "chat:777")
        ]
    );
    assert_eq!(l.flood_waits_last_hour(), 3, "user keys have no flood log");

    advance(Duration::from_secs(30 * 60)).await;
    assert_eq!(l.flood_waits(ACCOUNT).len(), 1, "the first is an hour old");
    assert_eq!(l.flood_waits_last_hour(), 2);
    advance(Duration::from_secs(30 * 60)).await;
    assert!(l.flood_waits(ACCOUNT).is_empty());
    assert_eq!(l.flood_waits_last_hour(), 0);
}

#[actix_rt::test]
async fn snapshot_shows_usage_reset_and_block_of_the_accounts_keys() {
    tokio::time::pause();
    let l = limiter_with(&[
        ("rate_limits.telegram.messages_sent.window_ms", 10_000),
        ("rate_limits.telegram.messages_sent.max", 3),
        ("rate_limits.flood_wait.margin_ms", 1_000),
    ]);
    let account = Key::account_messages(ACCOUNT);
    l.check(&account).unwrap();
    l.check(&account).unwrap();
    l.check(&Key::chat_messages(ACCOUNT, CHAT)).unwrap();
    l.check(&Key::account_messages(6)).unwrap();
    l.check(&Key::api(1)).unwrap();
    advance(Duration::from_secs(4)).await;
    l.block(
        &Key::chat_messages(ACCOUNT, CHAT),
        Duration::from_secs(20),
        "messages.sendMessage",
    );

    let keys = l.snapshot(Some(ACCOUNT));
    assert_eq!(keys.len(), 2, "{keys:?}");
    let a = &keys[0];
    assert_eq!(
        (a.limit, a.subject.as_str(), a.window_ms, a.max),
        (Limit::AccountMessages, "account:5", 10_000, 3)
    );
    assert_eq!((a.used, a.remaining, a.resets_in_ms), (2, 1, 6_000));
    assert_eq!((a.blocked_until, a.blocked_for_ms), (None, None));
    let c = &keys[1];
    assert_eq!(
        (c.limit, c.subject.as_str(), c.max),
        (Limit::ChatMessages, "chat:5:777", 20)
    );
    assert_eq!(c.blocked_for_ms, Some(21_000));
    assert!(c.blocked_until.is_some_and(|t| t > chrono::Utc::now()));
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["limit"], "chat_messages");

    assert_eq!(l.snapshot(None).len(), 4);
    advance(Duration::from_secs(6)).await;
    let a = &l.snapshot(Some(ACCOUNT))[0];
    assert_eq!((a.used, a.remaining, a.resets_in_ms), (0, 3, 0));
}

#[actix_rt::test]
async fn forgetting_an_account_drops_its_keys_chats_and_flood_log_only() {
    tokio::time::pause();
    let l = limiter_with(&[]);
    l.check(&Key::account_messages(ACCOUNT)).unwrap();
    l.check(&Key::media_uploads(ACCOUNT)).unwrap();
    l.block(
        &Key::chat_messages(ACCOUNT, CHAT),
        ms(1),
        "messages.sendMessage",
    );
    l.check(&Key::account_messages(6)).unwrap();
    l.block(&Key::account_messages(6), ms(1), "messages.sendMessage");

    l.forget_account(ACCOUNT);

    assert!(l.snapshot(Some(ACCOUNT)).is_empty());
    assert!(l.flood_waits(ACCOUNT).is_empty());
    assert_eq!(l.snapshot(None).len(), 1);
    assert_eq!(l.flood_waits(6).len(), 1);
}

#[test]
fn quotas_come_from_the_configured_limits() {
    let l = limiter_with(&[("rate_limits.api.auth.max", 0)]);
    let min = |m: u64| Duration::from_secs(60 * m);
    assert_eq!(l.quota(Limit::AccountMessages), (min(1), 30));
    assert_eq!(l.quota(Limit::ChatMessages), (min(1), 20));
    assert_eq!(l.quota(Limit::MediaUploads), (min(1), 10));
    assert_eq!(l.quota(Limit::ChannelInvites), (min(24 * 60), 50));
    assert_eq!(l.quota(Limit::ApiStandard), (min(1), 100));
    assert_eq!(
        l.quota(Limit::ApiAuth),
        (min(15), 1),
        "a max of 0 is taken as 1"
    );
    assert_eq!(l.quota(Limit::WsMessages), (min(1), 100));
    assert_eq!(l.short_wait_threshold(), Duration::from_secs(30));
    for limit in Limit::ALL {
        let json = serde_json::to_value(limit).unwrap();
        assert_eq!(json, limit.as_str());
    }
}
