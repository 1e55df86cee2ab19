//! The error answers routes share, added to every operation from its shape:
//! what the extractors refuse before a handler runs (a JSON body, a query
//! string, a path id, a bearer token and the caller's API limit) and the
//! internal failure any database-backed route can meet. Writing them here
//! once keeps each annotation to what its own handler answers, and keeps
//! the document in step with the extractors when a route is added.

use crate::http::error::ErrorBody;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Type};
use utoipa::{Modify, ToSchema};

/// The header every 429 carries (and some 503s).
pub const RETRY_AFTER: &str = "Retry-After";

/// An error answer: its status and what it means, starting with its codes.
type Rule = (&'static str, &'static str);

/// A `web::Json` body (see `json_error`).
const JSON_BODY: &[Rule] = &[
    (
        "400",
        "`malformed_json`: the body is not JSON; `invalid_field`: a field is missing, unknown or of the wrong type",
    ),
    (
        "408",
        "`body_timeout`: the body did not arrive within `server.body_timeout_ms` of the headers; the connection is closed",
    ),
    (
        "413",
        "`payload_too_large`: the body is larger than `server.max_json_bytes`",
    ),
    (
        "415",
        "`unsupported_media_type`: the body's Content-Type is not `application/json`",
    ),
];

/// A `web::Query` (see `query_error`).
const QUERY: &[Rule] = &[(
    "400",
    "`invalid_query`: the query string does not parse (an unknown parameter, or a value of the wrong type)",
)];

/// A `web::Path` (see `path_error`).
const PATH: &[Rule] = &[(
    "404",
    "`not_found`: a path segment that is not a valid id names nothing",
)];

/// The `Authenticated` and `Admin` extractors.
const BEARER: &[Rule] = &[
    (
        "401",
        "`token_missing`, `token_malformed`, `token_expired`, `token_bad_signature`, `token_unknown_key`, `token_invalid_issuer`, `token_invalid_audience`, `token_revoked`: no valid `Authorization: Bearer` token",
    ),
    (
        "429",
        "`rate_limited`: over the caller's API limit (`rate_limits.api.standard`); retry after `Retry-After` seconds (`retry_after_ms` in the body)",
    ),
];

/// Routes that reach the database.
const INTERNAL: &[Rule] = &[(
    "500",
    "`internal`: an unexpected failure; quote `incident_id`, which the log line carries too",
)];

/// Adds the shared error answers to every operation, and `Retry-After` to
/// every 429 (one definition, for the 503s that carry it too).
pub struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.headers.insert(
            RETRY_AFTER.to_owned(),
            RefOr::T(
                Header::builder()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .description(Some("Seconds to wait before trying again (rounded up)"))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in operations(item) {
                for rule in rules(path, op) {
                    add(op, rule);
                }
                // One definition of Retry-After, on every answer that has it.
                for (status, r) in op.responses.responses.iter_mut() {
                    if let RefOr::T(r) = r
                        && (status == "429" || r.headers.contains_key(RETRY_AFTER))
                    {
                        r.headers.insert(
                            RETRY_AFTER.to_owned(),
                            RefOr::Ref(Ref::new(format!("#/components/headers/{RETRY_AFTER}"))),
                        );
                    }
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The shared answers `op` can give, from its shape.
fn rules(path: &str, op: &Operation) -> Vec<Rule> {
    let json_body = op.request_body.as_ref().is_some_and(|b| match b {
        RefOr::T(b) => b.content.contains_key("application/json"),
        RefOr::Ref(_) => false,
    });
    let params = op.parameters.iter().flatten().filter_map(|p| match p {
        RefOr::T(p) => Some(&p.parameter_in),
        RefOr::Ref(_) => None,
    });
    let (mut query, mut path_params) = (false, false);
    for p in params {
        query |= *p == ParameterIn::Query;
        path_params |= *p == ParameterIn::Path;
    }
    let bearer = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let database = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
    let mut rules = Vec::new();
    for (applies, list) in [
        (json_body, JSON_BODY),
        (query, QUERY),
        (path_params, PATH),
        (bearer, BEARER),
        (database, INTERNAL),
    ] {
        if applies {
            rules.extend_from_slice(list);
        }
    }
    rules
}

/// Adds `rule` to `op`: a new error answer, or its codes appended to the
/// description of the answer the route documents for that status.
fn add(op: &mut Operation, (status, text): Rule) {
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(r)) => {
            if !r.description.contains(text) {
                r.description = format!("{}; {text}", r.description.trim_end_matches('.'));
            }
            if r.content.is_empty() {
                r.content
                    .insert("application/json".to_owned(), RefOr::T(error_content()));
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut r = Response::new(text);
            r.content
                .insert("application/json".to_owned(), RefOr::T(error_content()));
            op.responses
                .responses
                .insert(status.to_owned(), RefOr::T(r));
        }
    }
}

fn error_content() -> Content {
    Content::new(Some(RefOr::Ref(Ref::from_schema_name(ErrorBody::name()))))
}
