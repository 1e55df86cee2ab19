//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated from the
//! handlers' annotations and types, with the error answers every route
//! shares added by [`common::CommonErrors`]. Tests check that it lists
//! exactly the routes [`super::registered_routes`] registers and that no two
//! types share a schema name; `scripts/fuzz-api` checks it against the
//! running service.

mod common;
mod send_request;
#[cfg(test)]
mod tests;

use super::{accounts, admin, alerts, auth, error, health, limits, messages, metrics, uploads, ws};
use actix_web::HttpResponse;
use common::CommonErrors;
use send_request::SendRequestKinds;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tgvisor",
        description = "A supervised gateway between Telegram user accounts and the applications that drive them. Errors are always `{\"error\":{\"code\",\"message\"}}`; each answer names the codes it can carry, and every 429 has `Retry-After`."
    ),
    paths(
        auth::register,
        auth::login,
        auth::logout_all,
        accounts::import,
        accounts::list,
        accounts::get,
        accounts::remove,
        accounts::start_sign_in,
        accounts::submit_code,
        accounts::submit_password,
        accounts::rotate_session,
        accounts::history,
        limits::account_limits,
        messages::send,
        messages::get,
        uploads::create,
        uploads::get,
        admin::audit,
        admin::errors,
        alerts::list,
        alerts::ack,
        openapi_json,
        health::health,
        health::live,
        health::ready,
        health::detailed,
        health::telegram,
        health::database,
        limits::health,
        metrics::metrics,
        ws::route,
        ws::health_route,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth, &CommonErrors, &SendRequestKinds),
    tags(
        (name = "auth", description = "Users and access tokens"),
        (name = "accounts", description = "Telegram accounts and their sessions"),
        (name = "messages", description = "Reading and sending messages"),
        (name = "uploads", description = "Files streamed to Telegram, for sending as media"),
        (name = "admin", description = "Operator routes (admin role)"),
        (name = "meta", description = "Health, metrics and this document"),
        (name = "websocket", description = "The WebSocket gateway (frames: see docs/websocket-protocol.md)"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the routes refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
