//! One check per component, each in its file, and [`run`], which picks
//! the check of a component by name.

mod api;
mod database;
mod rate_limits;
mod resources;
mod supervision;
mod telegram;
mod websocket;

use super::handle::Health;
use super::sample::View;
use super::status::Check;
use std::sync::Arc;
use std::time::Duration;

/// `component`'s check on `v` (`None`: no such component), without a
/// timeout (the caller applies it).
pub(super) async fn run(h: &Health, component: &str, v: Arc<View>) -> Option<Check> {
    Some(match component {
        "supervision" => supervision::check(h, &v),
        "database" => database::check(h, &v).await,
        "websocket" => websocket::check(h),
        "telegram" => telegram::check(h, &v),
        "rate_limits" => rate_limits::check(h, &v),
        "api" => api::check(h, &v),
        "resources" => {
            // statvfs and /proc reads block (an NFS data directory can
            // hang): on a blocking thread, so the timeout holds.
            let this = h.clone();
            let v = v.clone();
            match tokio::task::spawn_blocking(move || resources::check(&this, &v)).await {
                Ok(check) => check,
                Err(_) => Check::timed_out(Duration::ZERO),
            }
        }
        _ => return None,
    })
}
