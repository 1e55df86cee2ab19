//! Before the load: a fresh user, its token, `--accounts` imported sim
//! accounts all `connected`, and the chats to rotate over. Afterwards the
//! accounts are deleted again.

use crate::api::{Api, Failure};
use crate::duration;
use crate::session;
use anyhow::{Context as _, bail};
use rand::Rng;
use rand::distr::Alphanumeric;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often to look at the accounts' state while they connect.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Fresh phone numbers to try for one account when the one picked is taken.
const IMPORT_ATTEMPTS: usize = 20;
/// Fresh usernames to try when the one picked is taken.
const REGISTER_ATTEMPTS: usize = 3;
/// States an account does not leave on its own: waiting for them is pointless.
const STUCK_STATES: [&str; 6] = [
    "unauthorized",
    "revoked",
    "banned",
    "duplicate_key",
    "stopped",
    "failed",
];

/// An imported account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// tgvisor's account id (the `{id}` in the routes).
    pub id: i64,
    /// The Telegram user behind it, once the service knows it: a numeric chat.
    pub telegram_user_id: Option<i64>,
}

/// What the load needs.
pub struct Fixture {
    /// The API with the new user's token.
    pub api: Api,
    /// That token (for the WebSocket's `Authorization: Bearer`).
    pub token: String,
    /// The imported accounts, all `connected`.
    pub accounts: Vec<Account>,
    /// Chat references to rotate over (`me`, `@echo`, numeric ids).
    pub chats: Vec<String>,
}

/// The account JSON, the fields used here.
#[derive(Deserialize)]
struct AccountJson {
    id: i64,
    state: String,
    #[serde(default)]
    telegram_user_id: Option<i64>,
}

/// The login answer, the field used here.
#[derive(Deserialize)]
struct TokenJson {
    token: String,
}

/// What [`prepare`] sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Sim accounts to import.
    pub accounts: usize,
    /// Chats to rotate over (see [`chat_list`]).
    pub chats: usize,
    /// How long the accounts may take to become `connected`.
    pub connect_timeout: Duration,
    /// Leave the accounts in place when setup fails.
    pub keep_accounts: bool,
}

/// Registers, logs in, imports and waits for the accounts; on a failure
/// after the imports the accounts are removed again (unless kept).
pub async fn prepare(api: &Api, args: &Plan) -> anyhow::Result<Fixture> {
    preflight(api).await?;
    let token = register_and_login(api).await?;
    let api = api.with_token(&token)?;
    let mut accounts = Vec::with_capacity(args.accounts);
    let imported = import_all(&api, args.accounts, &mut accounts).await;
    let ready = match imported {
        Ok(()) => wait_connected(&api, &mut accounts, args.connect_timeout).await,
        Err(e) => Err(e),
    };
    let chats = ready.and_then(|()| {
        let ids: Vec<Option<i64>> = accounts.iter().map(|a| a.telegram_user_id).collect();
        chat_list(args.chats, &ids).map_err(anyhow::Error::msg)
    });
    match chats {
        Ok(chats) => Ok(Fixture {
            api,
            token,
            accounts,
            chats,
        }),
        Err(e) => {
            if !args.keep_accounts {
                remove_accounts(&api, &accounts).await;
            }
            Err(e)
        }
    }
}

/// Fails early, and clearly, when nothing answers at the URL.
async fn preflight(api: &Api) -> anyhow::Result<()> {
    let response = api.request(Method::GET, "/health").send().await;
    match response {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            eprintln!(
                "tgvisor-load: warning: {}/health answers {} (the service is not healthy); going on",
                api.base(),
                r.status()
            );
            Ok(())
        }
        Err(e) => Err(crate::api::transport_failure(api.base(), &e).into()),
    }
}

/// A throwaway user that passes the service's validation.
struct Credentials {
    /// `load_` + 12 random letters and digits.
    username: String,
    /// `<username>@load.example.com`.
    email: String,
    /// 24 random letters and digits.
    password: String,
}

impl Credentials {
    fn random() -> Self {
        let username = format!("load_{}", random_alnum(12).to_ascii_lowercase());
        Self {
            email: format!("{username}@load.example.com"),
            username,
            password: random_alnum(24),
        }
    }
}

fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Registers a fresh user and returns a token for it.
pub async fn register_and_login(api: &Api) -> anyhow::Result<String> {
    let (username, password) = register(api).await?;
    let body = json!({ "username": username, "password": password });
    let request = api.request(Method::POST, "/api/v1/auth/login").json(&body);
    let token: TokenJson = api
        .call(request, StatusCode::OK)
        .await
        .context("logging in as the new user")?;
    eprintln!("tgvisor-load: registered user {username}");
    Ok(token.token)
}

/// Registers a new user with random credentials; answers its username and
/// password.
pub async fn register(api: &Api) -> anyhow::Result<(String, String)> {
    let mut attempt = 0;
    let creds = loop {
        attempt += 1;
        let creds = Credentials::random();
        let body = json!({
            "username": creds.username,
            "email": creds.email,
            "password": creds.password,
        });
        let request = api
            .request(Method::POST, "/api/v1/auth/register")
            .json(&body);
        match api.exchange(request, StatusCode::CREATED).await {
            Ok(_) => break creds,
            Err(f) if f.status() == Some(409) && attempt < REGISTER_ATTEMPTS => continue,
            Err(f) if f.status() == Some(429) => bail!(
                "registering a user: {f}\nregistrations are limited per client address \
                 (rate_limits.api.auth, 5 per 15 minutes by default); start the service with \
                 TGVISOR__RATE_LIMITS__API__AUTH__MAX=1000 for repeated runs"
            ),
            Err(f) => return Err(f).context("registering a user"),
        }
    };
    Ok((creds.username, creds.password))
}

/// Imports one account from a given Telethon session string (e.g. one a
/// fake MTProto server printed).
pub async fn import_session(api: &Api, phone: &str, session: &str) -> anyhow::Result<Account> {
    let body = json!({ "phone": phone, "session": session });
    let request = api
        .request(Method::POST, "/api/v1/accounts/import")
        .json(&body);
    let a: AccountJson = api
        .call(request, StatusCode::CREATED)
        .await
        .context("importing the account")?;
    Ok(Account {
        id: a.id,
        telegram_user_id: a.telegram_user_id,
    })
}

/// Imports `n` sim accounts into `out` (so that a failure half-way can still clean up).
async fn import_all(api: &Api, n: usize, out: &mut Vec<Account>) -> anyhow::Result<()> {
    for index in 0..n {
        let account = import_one(api, session::dc_for(index))
            .await
            .with_context(|| format!("importing account {} of {n}", index + 1))?;
        out.push(account);
    }
    eprintln!("tgvisor-load: imported {n} account(s)");
    Ok(())
}

/// Imports one account on `dc`, picking another number while the one picked is taken.
async fn import_one(api: &Api, dc: u8) -> anyhow::Result<Account> {
    let mut last: Option<Failure> = None;
    for _ in 0..IMPORT_ATTEMPTS {
        let (phone, session) = session::random_sim_account(dc);
        let body = json!({ "phone": phone, "session": session });
        let request = api
            .request(Method::POST, "/api/v1/accounts/import")
            .json(&body);
        match api.call::<AccountJson>(request, StatusCode::CREATED).await {
            Ok(a) => {
                return Ok(Account {
                    id: a.id,
                    telegram_user_id: a.telegram_user_id,
                });
            }
            // 409: the number is taken; try another one.
            Err(f) if f.status() == Some(409) => last = Some(f),
            Err(f) => return Err(f.into()),
        }
    }
    match last {
        Some(f) => Err(f).context(format!(
            "{IMPORT_ATTEMPTS} phone numbers in a row were taken"
        )),
        None => bail!("no import was attempted"),
    }
}

/// Polls the accounts until all are `connected`, or fails with their states.
pub async fn wait_connected(
    api: &Api,
    accounts: &mut [Account],
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut pending: BTreeMap<usize, String> = (0..accounts.len())
        .map(|i| (i, "connecting".to_owned()))
        .collect();
    loop {
        let indices: Vec<usize> = pending.keys().copied().collect();
        for i in indices {
            let path = format!("/api/v1/accounts/{}", accounts[i].id);
            let a: AccountJson = api
                .call(api.request(Method::GET, &path), StatusCode::OK)
                .await
                .with_context(|| format!("reading account {}", accounts[i].id))?;
            if a.state == "connected" {
                accounts[i].telegram_user_id = a.telegram_user_id;
                pending.remove(&i);
            } else if STUCK_STATES.contains(&a.state.as_str()) {
                bail!(
                    "account {} is `{}` and will not connect by itself (see the service's log)",
                    a.id,
                    a.state
                );
            } else {
                pending.insert(i, a.state);
            }
        }
        if pending.is_empty() {
            eprintln!(
                "tgvisor-load: {} account(s) connected in {:.1}s",
                accounts.len(),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(not_connected_message(
                pending.values().map(String::as_str),
                accounts.len(),
                timeout
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// "2 of 8 accounts are not connected after 30s (waiting: 2)…", with a hint for `waiting`.
fn not_connected_message<'a>(
    states: impl Iterator<Item = &'a str>,
    total: usize,
    timeout: Duration,
) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in states {
        *counts.entry(s).or_default() += 1;
    }
    let pending: usize = counts.values().sum();
    let listed: Vec<String> = counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    let mut message = format!(
        "{pending} of {total} account(s) not connected after {} ({})",
        duration::format(timeout),
        listed.join(", ")
    );
    if counts.contains_key("waiting") {
        message.push_str(
            "; `waiting` accounts wait for a slot in the node's client pool \
             (telegram.max_clients_per_user, 50, and telegram.client_pool_size, 500, by \
             default): use fewer --accounts, delete accounts kept from earlier runs, or raise \
             TGVISOR__TELEGRAM__MAX_CLIENTS_PER_USER (and CLIENT_POOL_SIZE)",
        );
    }
    message
}

/// The first `k` of: `me`, `@echo`, then the accounts' distinct Telegram user ids.
pub fn chat_list(k: usize, user_ids: &[Option<i64>]) -> Result<Vec<String>, String> {
    let mut chats = vec!["me".to_owned(), "@echo".to_owned()];
    for id in user_ids.iter().flatten() {
        let id = id.to_string();
        if !chats.contains(&id) {
            chats.push(id);
        }
    }
    if k > chats.len() {
        return Err(format!(
            "--chats {k}: only {} chat(s) are available (me, @echo and the user ids of the \
             {} imported account(s) the service knows); use more --accounts or fewer --chats",
            chats.len(),
            user_ids.len()
        ));
    }
    chats.truncate(k);
    Ok(chats)
}

/// Deletes the accounts (best effort: a failure is a warning).
pub async fn remove_accounts(api: &Api, accounts: &[Account]) {
    let mut removed = 0;
    for a in accounts {
        let path = format!("/api/v1/accounts/{}", a.id);
        match api
            .exchange(api.request(Method::DELETE, &path), StatusCode::NO_CONTENT)
            .await
        {
            Ok(_) => removed += 1,
            Err(f) => eprintln!("tgvisor-load: warning: deleting account {}: {f}", a.id),
        }
    }
    if removed > 0 {
        eprintln!("tgvisor-load: deleted {removed} account(s)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgvisor::domain::validation::{Email, Password, Username};

    #[test]
    fn generated_credentials_pass_the_services_validation() {
        for _ in 0..20 {
            let c = Credentials::random();
            assert!(Username::parse(&c.username).is_ok(), "{}", c.username);
            assert!(Email::parse(&c.email).is_ok(), "{}", c.email);
            assert!(Password::parse(&c.password).is_ok());
        }
    }

    #[test]
    fn chats_start_with_me_and_echo_then_numeric_user_ids() {
        assert_eq!(chat_list(1, &[]).as_deref(), Ok(&["me".to_owned()][..]));
        assert_eq!(
            chat_list(2, &[None]),
            Ok(vec!["me".to_owned(), "@echo".to_owned()])
        );
        assert_eq!(
            chat_list(4, &[Some(100_001), Some(100_001), Some(100_002), None]),
            Ok(vec![
                "me".to_owned(),
                "@echo".to_owned(),
                "100001".to_owned(),
                "100002".to_owned()
            ])
        );
        let refused = chat_list(3, &[None]).unwrap_err();
        assert!(refused.contains("only 2 chat(s)"), "{refused}");
    }

    #[test]
    fn waiting_accounts_get_a_hint_about_the_client_pool() {
        let m = not_connected_message(
            ["waiting", "waiting", "connecting"].into_iter(),
            8,
            Duration::from_secs(30),
        );
        assert!(
            m.starts_with("3 of 8 account(s) not connected after 30s"),
            "{m}"
        );
        assert!(
            m.contains("waiting: 2") && m.contains("connecting: 1"),
            "{m}"
        );
        assert!(m.contains("TGVISOR__TELEGRAM__MAX_CLIENTS_PER_USER"), "{m}");
        let m = not_connected_message(["connecting"].into_iter(), 1, Duration::from_secs(5));
        assert!(!m.contains("client pool"), "{m}");
    }
}
