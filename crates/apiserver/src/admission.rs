//! What happens to an object between the request and the store:
//! decoding, defaulting, validation and, for Services, address allocation.

use crate::decoding::{decode, FieldValidation};
use crate::error::ApiError;
use crate::object_meta;
use crate::server::ApiServer;
use api::defaults::apply_defaults;
use api::registry::{ResourceInfo, SERVICES};
use api::service_admission::{admit_service as admit_service_with, ServiceAllocations};
use api::status::StatusError;
use api::validation::validate;
use serde_json::Value;

/// Decode, default and validate `obj` (a create when `old` is `None`);
/// returns the warnings for the client. Services are also given their
/// addresses here; the caller holds `ApiServer::service_allocation` across
/// this call and the store write.
pub async fn admit(
    server: &ApiServer,
    res: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let warnings = decode(res, obj, mode)?;
    apply_defaults(res.kind, obj);
    let errors = validate(res.kind, obj, old);
    if !errors.is_empty() {
        let name = crate::object_meta::name(obj).to_string();
        return Err(StatusError::invalid(res, &name, &errors).into());
    }
    if res.kind == "Service" && res.group.is_empty() {
        admit_service(server, obj, old).await?;
    }
    Ok(warnings)
}

/// Give a Service its ClusterIP and NodePorts, refusing ones that are out
/// of range or taken by another Service.
async fn admit_service(
    server: &ApiServer,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let (services, _) = server
        .storage
        .list(&SERVICES.key_prefix(None))
        .await
        .map_err(ApiError::Storage)?;
    let exclude = old.map(|o| {
        (
            object_meta::namespace(o).unwrap_or(""),
            object_meta::name(o),
        )
    });
    let used = ServiceAllocations::from_services(&services, exclude);
    let network = server.config.service_network();
    admit_service_with(obj, old, &used, &network, &mut rand::rng())
        .map_err(|errors| StatusError::invalid(&SERVICES, object_meta::name(obj), &errors).into())
}
