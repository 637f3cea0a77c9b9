//! `GET /api/capabilities/{receiverIdentifier}`: what a receiver accepts, built from its
//! ServiceRegistry records, so an archive system can choose a process and document type before
//! it creates a message.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::query::ApiQuery;
use crate::registry::{LookupOptions, PostAddress, RegistryError, ServiceRecord};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityQuery {
    security_level: Option<i32>,
    process: Option<String>,
}

fn address(address: Option<&PostAddress>) -> Value {
    let field = |value: Option<&String>| json!(value.cloned().unwrap_or_default());
    json!({
        "name": field(address.and_then(|a| a.name.as_ref())),
        "street": field(address.and_then(|a| a.street.as_ref())),
        "postalCode": field(address.and_then(|a| a.postal_code.as_ref())),
        "postalArea": field(address.and_then(|a| a.postal_area.as_ref())),
        "country": field(address.and_then(|a| a.country.as_ref())),
    })
}

fn capability(record: &ServiceRecord) -> Value {
    let document_types: Vec<Value> = record
        .document_types
        .iter()
        .map(|standard| {
            let kind = standard
                .rsplit_once("::")
                .map(|(_, t)| t)
                .unwrap_or(standard);
            json!({"type": kind, "standard": standard})
        })
        .collect();
    let mut capability = json!({
        "process": record.process,
        "serviceIdentifier": record.service.identifier,
        "documentTypes": document_types,
    });
    if record.service.identifier == "DPI" {
        capability["postAddress"] = address(record.post_address.as_ref());
        capability["returnAddress"] = address(record.return_address.as_ref());
        capability["digitalPostAddress"] = json!({
            "supplier": record.orgnr_postkasse.clone().unwrap_or_default(),
            "address": record.postkasse_adresse.clone().unwrap_or_default(),
        });
    }
    capability
}

/// `GET /servicerecord/{identifier}`: the registry's answer relayed, with the record a message
/// without a process would use (`SRResponseWrapper` of the real one).
pub async fn service_record(
    State(state): State<Arc<ApiState>>,
    Path(identifier): Path<String>,
) -> ApiResult<Json<Value>> {
    let options = LookupOptions::default();
    let resource = state
        .registry
        .identifier(&identifier, None, &options)
        .await
        .map_err(|error| lookup_error(&identifier, error))?;
    let selected = state
        .registry
        .default_service_record(&identifier, &options)
        .await
        .ok();
    Ok(Json(json!({
        "infoRecord": resource.info_record,
        "serviceRecord": selected,
        "serviceRecords": resource.service_records,
    })))
}

fn lookup_error(identifier: &str, error: RegistryError) -> ApiError {
    match error {
        RegistryError::NotFound { .. } => ApiError::not_found(
            "IdentifierNotFoundException",
            format!("Identifier {identifier} not found"),
        ),
        other => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "ServiceRegistryLookupException",
            other.to_string(),
        ),
    }
}

/// `GET /api/capabilities/{receiverIdentifier}?securityLevel=&process=`.
pub async fn capabilities(
    State(state): State<Arc<ApiState>>,
    Path(receiver): Path<String>,
    ApiQuery(query): ApiQuery<CapabilityQuery>,
) -> ApiResult<Json<Value>> {
    let options = LookupOptions {
        security_level: query.security_level,
        conversation_id: None,
    };
    let resource = state
        .registry
        .identifier(&receiver, query.process.as_deref(), &options)
        .await
        .map_err(|error| lookup_error(&receiver, error))?;
    let capabilities: Vec<Value> = resource.service_records.iter().map(capability).collect();
    Ok(Json(json!({ "capabilities": capabilities })))
}
