//! `spawn_app()`: a real tgvisor on a free port with a fresh database.

pub mod accounts;
pub mod alerts;
pub mod binary;
pub mod events;
pub mod grammers;
pub mod promtool;
pub mod scrape;
pub mod ws;

use figment::Figment;
use figment::providers::{Format, Toml};
use sea_orm::{ConnectionTrait, Database};
use std::sync::Arc;
use std::time::Duration;
use tgvisor::config::{Environment, Settings, random_key};
use tgvisor::events::{EventLog, StoredEvent};
use tgvisor::startup::{Application, ShutdownHandle};
use tgvisor::supervisor::{SupervisionEvent, SupervisionEventKind, SupervisionRuntime};
use tgvisor::telegram::Backend;
use tgvisor::telegram::sim::{SimBackend, SimWorld};
use tokio::sync::broadcast;

/// Where the suite's databases come from.
pub enum TestDatabase {
    Sqlite,
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh database: a new PostgreSQL database when
    /// `TGVISOR_TEST_DATABASE_URL` is set, else a SQLite file in `dir`.
    pub async fn create(dir: &std::path::Path) -> (Self, String) {
        match std::env::var("TGVISOR_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("tgvisor_t_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to the PostgreSQL admin URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create a test database");
                let _ = admin.close().await;
                let url = replace_db_name(&admin_url, &name);
                (Self::Postgres { admin_url, name }, url)
            }
            _ => (
                Self::Sqlite,
                tgvisor::config::sqlite_url(&dir.join("test.db")),
            ),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop from a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = Database::connect(&admin_url).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && base[..i].ends_with(|c: char| c != '/') => {
            &base[..i]
        }
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Settings for a test instance: test.toml, a temp data dir, fresh secrets.
pub fn test_figment(data_dir: &std::path::Path, database_url: &str) -> Figment {
    Figment::new()
        .merge(Toml::file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/test.toml"
        )))
        .merge(("data_dir", data_dir.display().to_string()))
        .merge(("database.url", database_url))
        .merge(("secrets.password_pepper", random_key()))
        .merge(("secrets.jwt.active", "k1"))
        .merge(("secrets.jwt.keys.k1", random_key()))
        .merge(("secrets.session.active", "k1"))
        .merge(("secrets.session.keys.k1", random_key()))
}

pub struct TestApp {
    pub address: String,
    /// The configuration this instance runs with (secrets included).
    pub figment: Figment,
    pub settings: Settings,
    pub database_url: String,
    pub client: reqwest::Client,
    pub supervision: Arc<SupervisionRuntime>,
    pub app_database: tgvisor::supervisor::ChildRef<tgvisor::db::DatabaseActor>,
    pub shutdown: ShutdownHandle,
    pub db: TestDatabase,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The simulated Telegram this instance talks to (kept across restarts).
    pub world: SimWorld,
    /// Runs the grammers backend (against a fake MTProto server) instead of the sim.
    pub grammers: bool,
    pub events: EventLog,
    /// The instance's rate limiter (tests inject flood waits through it).
    pub limiter: tgvisor::ratelimit::RateLimiter,
    pub uploads: tgvisor::uploads::Uploads,
    pub alerts: tgvisor::alerts::AlertRouterHandle,
    /// The service's own pool (tests that starve it).
    pub app_db: sea_orm::DatabaseConnection,
    _data: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|f| f).await
}

/// Like [`spawn_app`], with extra configuration on top.
pub async fn spawn_app_with(customize: impl FnOnce(Figment) -> Figment) -> TestApp {
    let data = tempfile::tempdir().expect("temp dir");
    let (db, url) = TestDatabase::create(data.path()).await;
    let figment = customize(test_figment(data.path(), &url));
    start(figment, url, db, data, SimWorld::default(), false).await
}

/// An app on the grammers backend, talking real MTProto to a loopback fake
/// server that serves the returned world.
pub async fn spawn_grammers_app() -> (TestApp, fake_mtproto::FakeServer) {
    let world = SimWorld::default();
    let server = fake_mtproto::FakeServer::start(world.clone())
        .await
        .expect("the fake MTProto server starts");
    let data = tempfile::tempdir().expect("temp dir");
    let (db, url) = TestDatabase::create(data.path()).await;
    let figment = test_figment(data.path(), &url)
        .merge(("telegram.backend", "grammers"))
        .merge(("telegram.api_id", 1))
        .merge(("telegram.api_hash", "00000000000000000000000000000000"));
    (start(figment, url, db, data, world, true).await, server)
}

async fn start(
    figment: Figment,
    url: String,
    db: TestDatabase,
    data: tempfile::TempDir,
    world: SimWorld,
    grammers: bool,
) -> TestApp {
    let settings =
        Settings::from_defaults(Environment::Test, figment.clone()).expect("test settings");
    let backend: Arc<dyn Backend> = if grammers {
        Arc::new(tgvisor::telegram::grammers::GrammersBackend::new(
            &settings.telegram,
        ))
    } else {
        Arc::new(SimBackend::new(world.clone()))
    };
    let app = Application::build_with_backend(settings.clone(), Some(backend))
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let supervision = app.supervision();
    let app_database = app.database();
    let shutdown = app.shutdown_handle();
    let events = app.events();
    let limiter = app.limiter();
    let uploads = app.uploads();
    let alerts = app.alerts();
    let app_db = app.db();
    let task = actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        figment,
        settings,
        database_url: url,
        client: reqwest::Client::new(),
        supervision,
        app_database,
        shutdown,
        db,
        task: Some(task),
        world,
        grammers,
        events,
        limiter,
        uploads,
        alerts,
        app_db,
        _data: data,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body")
    }

    /// Panics `actor` (a path such as `root/uploader`) and waits until its
    /// supervisor has started it again.
    pub async fn restart_actor(&self, actor: &'static str) {
        let mut events = self.supervision.subscribe();
        let generation = self.supervision.status(actor).map_or(0, |s| s.restarts) + 2;
        assert_eq!(self.inject_panic(actor).await.status().as_u16(), 202);
        wait_for_event(&mut events, is_started(actor, generation)).await;
    }

    pub async fn inject_panic(&self, actor: &str) -> reqwest::Response {
        self.client
            .post(self.url("/debug/actors/panic"))
            .json(&serde_json::json!({ "actor": actor }))
            .send()
            .await
            .expect("request sent")
    }

    /// Shut down gracefully and wait for it.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await.expect("the app task").expect("a clean shutdown");
        }
    }

    /// Stops this instance and starts another on the same database and data
    /// directory, with `customize` applied on top of this one's configuration.
    pub async fn restart(self, customize: impl FnOnce(Figment) -> Figment) -> TestApp {
        self.restart_with(customize, || {}).await
    }

    /// Like [`TestApp::restart`], running `between` while the service is down.
    pub async fn restart_after(self, between: impl FnOnce()) -> TestApp {
        self.restart_with(|f| f, between).await
    }

    async fn restart_with(
        mut self,
        customize: impl FnOnce(Figment) -> Figment,
        between: impl FnOnce(),
    ) -> TestApp {
        self.halt().await;
        between();
        let figment = customize(self.figment.clone());
        let url = self.database_url.clone();
        // Move the database and directory out; `self` is dropped empty.
        let db = std::mem::replace(&mut self.db, TestDatabase::Sqlite);
        let data = std::mem::replace(&mut self._data, tempfile::tempdir().expect("temp dir"));
        start(figment, url, db, data, self.world.clone(), self.grammers).await
    }

    /// Waits for the first event on `topic` matching `pred`, stored or yet
    /// to come (subscribes before looking, so none slips between).
    pub async fn wait_event(
        &self,
        topic: &str,
        pred: impl Fn(&StoredEvent) -> bool,
    ) -> StoredEvent {
        let mut live = self.events.subscribe();
        let stored = tgvisor::events::since(self.events.db(), topic, 0, 10_000)
            .await
            .expect("reading events");
        if let Some(e) = stored.into_iter().find(|e| pred(e)) {
            return e;
        }
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match live.recv().await {
                    Ok(e) if e.topic == topic && pred(&e) => return e,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("event bus closed: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no matching event on {topic}"))
    }

    /// Waits until the account's state event says `state` (after `after`).
    pub async fn wait_state(&self, account_id: i64, state: &str, after: i64) -> StoredEvent {
        self.wait_event(&format!("account:{account_id}"), |e| {
            e.offset > after && e.kind == "account.state" && e.data["state"] == state
        })
        .await
    }

    /// A direct connection to this instance's database.
    pub async fn db_conn(&self) -> sea_orm::DatabaseConnection {
        Database::connect(&self.database_url)
            .await
            .expect("connect to the test database")
    }

    /// POST a JSON body, with a bearer token when given.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    /// GET with a bearer token.
    pub async fn get_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// DELETE with a bearer token.
    pub async fn delete_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers `username` (password `password-<username>`); returns the user id.
    pub async fn register(&self, username: &str) -> i64 {
        let res = self
            .post_json(
                "/api/v1/auth/register",
                None,
                &serde_json::json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": format!("password-{username}"),
                }),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "registering {username}");
        let body: serde_json::Value = res.json().await.expect("JSON");
        body["id"].as_i64().expect("a user id")
    }

    /// Logs in with the password [`TestApp::register`] used; returns the token.
    pub async fn login(&self, username: &str) -> String {
        let res = self
            .post_json(
                "/api/v1/auth/login",
                None,
                &serde_json::json!({
                    "username": username,
                    "password": format!("password-{username}"),
                }),
            )
            .await;
        assert_eq!(res.status().as_u16(), 200, "logging in as {username}");
        let body: serde_json::Value = res.json().await.expect("JSON");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Registers and logs in; returns (user id, token).
    /// Registers `username` with the admin role; answers its token.
    pub async fn admin(&self, username: &str) -> String {
        self.register(username).await;
        tgvisor::ops::set_role(
            &self.settings,
            username,
            tgvisor::security::jwt::Role::Admin,
        )
        .await
        .expect("setting the admin role");
        self.login(username).await
    }

    pub async fn user(&self, username: &str) -> (i64, String) {
        let id = self.register(username).await;
        (id, self.login(username).await)
    }
}

/// Wait for the first supervision event matching `pred` (bounded).
pub async fn wait_for_event(
    rx: &mut broadcast::Receiver<SupervisionEvent>,
    pred: impl Fn(&SupervisionEvent) -> bool,
) -> SupervisionEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(e) => panic!("event stream broke: {e}"),
            }
        }
    })
    .await
    .expect("the expected supervision event never came")
}

pub fn is_started(actor: &'static str, generation: u64) -> impl Fn(&SupervisionEvent) -> bool {
    move |e| {
        e.actor == actor
            && matches!(e.kind, SupervisionEventKind::Started { generation: g } if g == generation)
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        replace_db_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        replace_db_name("postgres://u@h/db?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
}
