//! The HTTP surface: routes, shared state, middleware and error bodies.
//!
//! Every public route is declared once, in [`declare_routes`]; the same list
//! registers the handlers and answers [`registered_routes`], which a test
//! compares with the OpenAPI document.

mod accounts;
mod admin;
mod alerts;
mod auth;
pub mod body;
mod body_wait;
pub mod connections;
mod debug;
pub mod error;
pub mod extract;
pub mod health;
mod limits;
mod messages;
mod metrics;
mod middleware;
pub mod openapi;
mod uploads;
mod ws;

pub use middleware::observe;

use crate::accounts::AccountService;
use crate::auth::AuthService;
use crate::config::Settings;
use crate::db::DbHealthState;
use crate::metrics::Metrics;
use crate::supervisor::SupervisionRuntime;
use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, Route, web};
use std::sync::Arc;
use std::time::Instant;

/// What every handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: sea_orm::DatabaseConnection,
    pub metrics: Metrics,
    pub supervision: Arc<SupervisionRuntime>,
    pub db_health: DbHealthState,
    pub auth: AuthService,
    pub accounts: AccountService,
    pub account_supervisor: crate::accounts::supervisor::AccountSupervisor,
    /// The use cases that span services (see [`crate::app`]).
    pub app: crate::app::AppDeps,
    pub events: crate::events::EventLog,
    /// Keyed rate limits and flood-wait blocks (API, Telegram, WebSocket).
    pub limiter: crate::ratelimit::RateLimiter,
    pub outbox: crate::outbox::Outbox,
    pub uploads: crate::uploads::Uploads,
    /// The HealthMonitor's checks.
    pub health: crate::health::Health,
    /// The way in to the AlertRouter.
    pub alerts: crate::alerts::AlertRouterHandle,
    /// The WebSocket gateway's shared parts.
    pub ws: Arc<crate::ws::WsContext>,
    pub started_at: Instant,
}

/// Collects routes: method, path pattern and handler.
#[derive(Default)]
pub struct RouteTable {
    entries: Vec<(Method, &'static str, Route)>,
}

impl RouteTable {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(method.clone()).to(handler);
        self.entries.push((method, path, route));
        self
    }

    /// Registers every route, one resource per path (so a known path with
    /// another method answers 405, not 404).
    fn register(self, cfg: &mut web::ServiceConfig) {
        let mut by_path: Vec<(&'static str, Vec<Route>)> = Vec::new();
        for (_, path, route) in self.entries {
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, routes)) => routes.push(route),
                None => by_path.push((path, vec![route])),
            }
        }
        for (path, routes) in by_path {
            let mut resource = web::resource(path);
            for route in routes {
                resource = resource.route(route);
            }
            cfg.service(resource);
        }
    }
}

/// The public routes. Keep in step with [`openapi::ApiDoc`] (a test checks).
fn declare_routes(t: &mut RouteTable) {
    t.add(Method::GET, "/health", health::health)
        .add(Method::GET, "/health/live", health::live)
        .add(Method::GET, "/health/ready", health::ready)
        .add(Method::GET, "/health/detailed", health::detailed)
        .add(Method::GET, "/health/telegram", health::telegram)
        .add(Method::GET, "/health/database", health::database)
        .add(Method::GET, "/health/rate-limits", limits::health)
        .add(Method::GET, "/health/websocket", ws::health_route)
        .add(Method::GET, "/metrics", metrics::metrics)
        .add(Method::GET, "/api/v1/openapi.json", openapi::openapi_json)
        .add(Method::POST, "/api/v1/auth/register", auth::register)
        .add(Method::POST, "/api/v1/auth/login", auth::login)
        .add(Method::POST, "/api/v1/auth/logout-all", auth::logout_all)
        .add(Method::POST, "/api/v1/accounts/import", accounts::import)
        .add(Method::POST, "/api/v1/accounts", accounts::start_sign_in)
        .add(Method::GET, "/api/v1/accounts", accounts::list)
        .add(Method::GET, "/api/v1/accounts/{id}", accounts::get)
        .add(Method::DELETE, "/api/v1/accounts/{id}", accounts::remove)
        .add(
            Method::POST,
            "/api/v1/accounts/{id}/login/code",
            accounts::submit_code,
        )
        .add(
            Method::POST,
            "/api/v1/accounts/{id}/login/password",
            accounts::submit_password,
        )
        .add(
            Method::POST,
            "/api/v1/accounts/{id}/sessions/rotate",
            accounts::rotate_session,
        )
        .add(
            Method::POST,
            "/api/v1/accounts/{id}/messages",
            messages::send,
        )
        .add(
            Method::GET,
            "/api/v1/accounts/{id}/messages/{message_id}",
            messages::get,
        )
        .add(
            Method::GET,
            "/api/v1/accounts/{id}/limits",
            limits::account_limits,
        )
        .add(
            Method::GET,
            "/api/v1/accounts/{id}/chats/{chat}/messages",
            accounts::history,
        )
        .add(
            Method::POST,
            "/api/v1/accounts/{id}/uploads",
            uploads::create,
        )
        .add(Method::GET, "/api/v1/uploads/{id}", uploads::get)
        .add(Method::GET, "/api/v1/audit", admin::audit)
        .add(Method::GET, "/api/v1/errors", admin::errors)
        .add(Method::GET, "/api/v1/alerts", alerts::list)
        .add(Method::POST, "/api/v1/alerts/{id}/ack", alerts::ack)
        .add(Method::GET, "/ws", ws::route);
}

/// `(METHOD, path)` of every public route, as registered.
pub fn registered_routes() -> Vec<(String, String)> {
    let mut t = RouteTable::default();
    declare_routes(&mut t);
    t.entries
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_owned()))
        .collect()
}

/// Register every route. Debug routes exist only when fault injection is on.
pub fn routes(fault_injection: bool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let mut t = RouteTable::default();
        declare_routes(&mut t);
        t.register(cfg);
        if fault_injection {
            cfg.service(
                web::scope("/debug")
                    .route("/actors", web::get().to(debug::actors))
                    .route("/actors/panic", web::post().to(debug::panic_actor))
                    .route("/events", web::post().to(debug::publish_events)),
            );
        }
    }
}
