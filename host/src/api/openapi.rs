//! The OpenAPI 3.0 document of the API, at `/api-docs` and at springdoc's `/v3/api-docs`, where
//! the real integration point serves its own.
//!
//! It is a static file written alongside the router rather than generated from the handlers:
//! the API's shapes are the real integration point's, fixed by compatibility, so they change
//! rarely and deliberately. The test below keeps the file and the router in step: every route
//! the router registers must be described, and nothing else.

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api-docs`, `GET /v3/api-docs`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    /// The routes the router in `mod.rs` registers, as (path, method), with path parameters
    /// unnamed (`{}`) since the document names them for readers and the router for handlers.
    fn routes() -> BTreeSet<(String, String)> {
        let source = include_str!("mod.rs");
        let router = &source[source.find("pub fn router(").expect("the router")..];
        let mut routes = BTreeSet::new();
        for registration in router.split(".route(").skip(1) {
            let registration = registration
                .split(".layer(")
                .next()
                .expect("split yields once");
            let path = registration
                .split('"')
                .nth(1)
                .expect("a route starts with its path");
            let handlers = &registration[registration.find(',').expect("a method router")..];
            for method in ["get", "post", "put", "delete", "patch"] {
                let call = format!("{method}(");
                let registered = handlers.match_indices(&call).any(|(at, _)| {
                    at == 0
                        || !handlers[..at]
                            .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if registered {
                    routes.insert((unnamed(path), method.to_owned()));
                }
            }
        }
        routes
    }

    fn unnamed(path: &str) -> String {
        let mut out = String::new();
        let mut in_parameter = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_parameter = true;
                    out.push_str("{}");
                }
                '}' => in_parameter = false,
                _ if in_parameter => {}
                _ => out.push(c),
            }
        }
        out
    }

    fn document_json() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    #[test]
    fn the_scan_finds_the_routes_of_the_router() {
        let routes = routes();
        for (path, method) in [
            ("/api/messages/out/{}", "put"),
            ("/api/messages/out/{}", "delete"),
            ("/api/subscriptions", "delete"),
            ("/api/capabilities/{}", "get"),
            ("/v3/api-docs", "get"),
        ] {
            assert!(
                routes.contains(&(path.to_owned(), method.to_owned())),
                "{method} {path} not found in {routes:?}"
            );
        }
        assert!(!routes.iter().any(|(path, _)| path.starts_with("/manage")));
    }

    #[test]
    fn the_document_describes_every_route_and_nothing_else() {
        let document = document_json();
        assert_eq!(document["openapi"], "3.0.3");
        let described: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("a path item")
                    .keys()
                    .map(move |method| (unnamed(path), method.clone()))
            })
            .collect();
        // The document does not describe itself.
        let routes: BTreeSet<_> = routes()
            .into_iter()
            .filter(|(path, _)| !path.ends_with("api-docs"))
            .collect();
        let missing: Vec<_> = routes.difference(&described).collect();
        assert!(missing.is_empty(), "not described: {missing:?}");
        let extra: Vec<_> = described.difference(&routes).collect();
        assert!(extra.is_empty(), "described but not routed: {extra:?}");
    }

    #[test]
    fn every_reference_resolves_and_every_operation_answers_401_with_the_error_body() {
        let document = document_json();
        fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        found.push(target);
                    }
                    map.values().for_each(|v| references(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| references(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(
                document.pointer(pointer).is_some(),
                "{target} does not resolve"
            );
        }
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
                assert!(operation["operationId"].is_string(), "{method} {path}");
            }
        }
        assert_eq!(
            document["components"]["responses"]["BadRequest"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/Error"
        );
    }
}
