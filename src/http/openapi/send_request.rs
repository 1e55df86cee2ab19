//! `SendRequest` as the document shows it: `oneOf` a text message (`chat`
//! and `text`) and a media message (`chat`, `upload_id` and `kind`), each
//! without the other's fields. The schema derived from the struct, one
//! object with every field optional, admitted bodies the route refuses
//! (both a text and an upload, or neither), so generated requests rarely
//! got past validation and clients were told less than the truth.

use utoipa::Modify;
use utoipa::openapi::schema::{AdditionalProperties, Object, OneOf, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr};

/// The component this rewrites.
const NAME: &str = "SendRequest";

/// Each kind of message: its title, its fields and the required ones.
/// Between them they name every field of `SendRequest` (a test checks).
pub(super) const KINDS: [(&str, &[&str], &[&str]); 2] = [
    (
        "TextMessage",
        &["chat", "text", "reply_to", "silent"],
        &["chat", "text"],
    ),
    (
        "MediaMessage",
        &["chat", "upload_id", "kind", "caption", "reply_to", "silent"],
        &["chat", "upload_id", "kind"],
    ),
];

pub struct SendRequestKinds;

impl Modify for SendRequestKinds {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(schemas) = openapi.components.as_mut().map(|c| &mut c.schemas) else {
            return;
        };
        let Some(RefOr::T(Schema::Object(all))) = schemas.get(NAME) else {
            return;
        };
        let mut one_of = OneOf::new();
        one_of.description = all.description.clone();
        one_of.items = KINDS
            .iter()
            .map(|(title, fields, required)| {
                RefOr::T(Schema::Object(kind(all, title, fields, required)))
            })
            .collect();
        schemas.insert(NAME.to_owned(), RefOr::T(Schema::OneOf(one_of)));
    }
}

/// `all` with only `fields`, `required` of them required (and not null),
/// and no other property allowed.
fn kind(all: &Object, title: &str, fields: &[&str], required: &[&str]) -> Object {
    let mut o = all.clone();
    o.title = Some(title.to_owned());
    o.description = None;
    o.properties
        .retain(|name, _| fields.contains(&name.as_str()));
    for (name, schema) in o.properties.iter_mut() {
        if required.contains(&name.as_str()) {
            *schema = not_null(schema.clone());
        }
    }
    o.required = required.iter().map(|&f| f.to_owned()).collect();
    o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    o
}

/// An `Option`'s schema without its `null`.
fn not_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            if let SchemaType::Array(types) = &o.schema_type {
                let rest: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                o.schema_type = match rest.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(rest),
                };
            }
            RefOr::T(Schema::Object(o))
        }
        RefOr::T(Schema::OneOf(o)) => {
            let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(n)) if n.schema_type == SchemaType::Type(Type::Null));
            let mut rest: Vec<RefOr<Schema>> =
                o.items.iter().filter(|s| !is_null(s)).cloned().collect();
            if rest.len() == 1 {
                rest.remove(0)
            } else {
                RefOr::T(Schema::OneOf(o))
            }
        }
        other => other,
    }
}
