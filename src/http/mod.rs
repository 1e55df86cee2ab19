//! The HTTP surface: routes, shared state, middleware and error bodies.

mod debug;
pub mod error;
mod health;
mod metrics;
mod middleware;

pub use middleware::observe;

use crate::actors::database::DbHealthState;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::supervisor::SupervisionRuntime;
use actix_web::web;
use std::sync::Arc;
use std::time::Instant;

/// What every handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: sea_orm::DatabaseConnection,
    pub metrics: Metrics,
    pub supervision: Arc<SupervisionRuntime>,
    pub db_health: DbHealthState,
    pub started_at: Instant,
}

/// Register every route. Debug routes exist only when fault injection is on.
pub fn routes(fault_injection: bool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route("/health", web::get().to(health::health))
            .route("/metrics", web::get().to(metrics::metrics));
        if fault_injection {
            cfg.service(
                web::scope("/debug")
                    .route("/actors", web::get().to(debug::actors))
                    .route("/actors/panic", web::post().to(debug::panic_actor)),
            );
        }
    }
}
