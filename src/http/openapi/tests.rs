//! utoipa keys schemas by their name alone: two types that share a name
//! (two enums called `Status`) end up as one component, and every response
//! that refers to either is validated against whichever came last. These
//! tests collect the schemas each documented operation refers to, before
//! they are merged, and refuse a name used by two different schemas.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::__dev::SchemaReferences;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

type Schemas = Vec<(String, RefOr<Schema>)>;

/// Every operation of [`ApiDoc`]: its schema references, method and path.
/// `utoipa::__dev::SchemaReferences` is how the derive itself collects
/// them; it is hidden from utoipa's documentation, so an upgrade may move
/// it (this fails to compile then, never silently).
macro_rules! operations {
    ($($module:ident :: $handler:ident),* $(,)?) => {
        vec![$({
            let mut schemas = Schemas::new();
            <$module::$handler as SchemaReferences>::schemas(&mut schemas);
            let methods = <$module::$handler as utoipa::Path>::methods();
            (methods, <$module::$handler as utoipa::Path>::path(), schemas)
        }),*]
    };
}

fn documented_operations() -> Vec<(Vec<utoipa::openapi::path::HttpMethod>, String, Schemas)> {
    use crate::http::ws;
    operations![
        auth::__path_register,
        auth::__path_login,
        auth::__path_logout_all,
        accounts::__path_import,
        accounts::__path_list,
        accounts::__path_get,
        accounts::__path_remove,
        accounts::__path_start_sign_in,
        accounts::__path_submit_code,
        accounts::__path_submit_password,
        accounts::__path_rotate_session,
        accounts::__path_history,
        limits::__path_account_limits,
        messages::__path_send,
        messages::__path_get,
        uploads::__path_create,
        uploads::__path_get,
        admin::__path_audit,
        admin::__path_errors,
        alerts::__path_list,
        alerts::__path_ack,
        self::__path_openapi_json,
        health::__path_health,
        health::__path_detailed,
        health::__path_telegram,
        health::__path_database,
        health::__path_live,
        health::__path_ready,
        limits::__path_health,
        metrics::__path_metrics,
        ws::__path_route,
        ws::__path_health_route,
    ]
}

/// Every schema the document can hold, by name, with each distinct
/// definition given under that name.
fn schemas_by_name() -> BTreeMap<String, Vec<String>> {
    let mut all = Schemas::new();
    for (_, _, schemas) in documented_operations() {
        all.extend(schemas);
    }
    for (name, schema) in [
        (ErrorBody::name(), ErrorBody::schema()),
        (ErrorDetail::name(), ErrorDetail::schema()),
    ] {
        all.push((name.into_owned(), schema));
    }
    ErrorBody::schemas(&mut all);
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, schema) in all {
        // unwrap: a schema always serialises.
        let json = serde_json::to_string(&schema).unwrap();
        let seen = by_name.entry(name).or_default();
        if !seen.contains(&json) {
            seen.push(json);
        }
    }
    by_name
}

use super::error::{ErrorBody, ErrorDetail};
use utoipa::{PartialSchema, ToSchema};

#[test]
fn no_two_types_share_a_schema_name() {
    let by_name = schemas_by_name();
    let clashes: Vec<_> = by_name
        .iter()
        .filter(|(_, defs)| defs.len() > 1)
        .map(|(name, defs)| format!("{name}: {}", defs.join("  ≠  ")))
        .collect();
    assert!(
        clashes.is_empty(),
        "schema names given to different types (rename one with #[schema(as = …)]):\n{}",
        clashes.join("\n")
    );
    // The two status enums that once shared `Status`.
    let doc = document();
    let components = &doc.components.as_ref().unwrap().schemas;
    for name in ["MessageStatus", "UploadStatus"] {
        assert!(components.contains_key(name), "{name} missing");
    }
    assert!(!components.contains_key("Status"));
    // Every collected name is in the document, so the list above is whole.
    let names: BTreeSet<&String> = by_name.keys().collect();
    let documented: BTreeSet<&String> = components.keys().collect();
    assert_eq!(names, documented);
}

#[test]
fn the_list_of_operations_is_the_document_s() {
    let listed: BTreeSet<(String, String)> = documented_operations()
        .into_iter()
        .flat_map(|(methods, path, _)| {
            methods.into_iter().map(move |m| {
                (
                    serde_json::to_value(m)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    path.clone(),
                )
            })
        })
        .collect();
    let doc = serde_json::to_value(document()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(
        listed, documented,
        "keep documented_operations() in step with ApiDoc"
    );
}

#[test]
fn the_kinds_of_message_name_every_field_of_send_request() {
    let RefOr::T(Schema::Object(derived)) = <messages::SendRequest as PartialSchema>::schema()
    else {
        panic!("SendRequest derives an object schema");
    };
    let fields: BTreeSet<&str> = derived.properties.keys().map(String::as_str).collect();
    let named: BTreeSet<&str> = send_request::KINDS
        .iter()
        .flat_map(|(_, fields, _)| fields.iter().copied())
        .collect();
    assert_eq!(
        fields, named,
        "place every SendRequest field in send_request::KINDS"
    );
    let doc = serde_json::to_value(document()).unwrap();
    let kinds = &doc["components"]["schemas"]["SendRequest"]["oneOf"];
    assert_eq!(kinds[0]["required"], serde_json::json!(["chat", "text"]));
    assert_eq!(kinds[0]["properties"]["text"]["type"], "string");
    assert_eq!(
        kinds[1]["required"],
        serde_json::json!(["chat", "upload_id", "kind"])
    );
    assert_eq!(
        kinds[1]["properties"]["kind"]["$ref"],
        "#/components/schemas/MediaKind"
    );
    assert!(kinds[1]["properties"].get("text").is_none());
}
