//! Development-only routes (registered when `debug.fault_injection` is on):
//! list the actor tree, and make an actor panic from inside to watch the
//! supervisor restart it.

use super::AppState;
use super::error::ApiError;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub async fn actors(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.supervision.snapshot())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanicRequest {
    /// The actor's path, e.g. `root/database`.
    actor: String,
}

pub async fn panic_actor(
    state: web::Data<AppState>,
    body: web::Json<PanicRequest>,
) -> Result<HttpResponse, ApiError> {
    if state
        .supervision
        .inject_panic(&body.actor, "fault injected through /debug/actors/panic")
    {
        tracing::warn!(actor = %body.actor, "fault injected");
        Ok(HttpResponse::Accepted()
            .json(serde_json::json!({ "actor": body.actor, "injected": true })))
    } else {
        Err(ApiError::not_found("no running actor at that path"))
    }
}
