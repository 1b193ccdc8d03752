//! What happens to an object between the request and the store:
//! decoding, defaulting, validation and, for Services, address allocation.

use crate::allocator::{service_key, Reservation};
use crate::decoding::{decode, FieldValidation};
use crate::error::ApiError;
use crate::object_meta;
use crate::server::ApiServer;
use api::defaults::apply_defaults;
use api::registry::{ResourceInfo, SERVICES};
use api::service_admission::admit_service as admit_service_with;
use api::status::StatusError;
use api::validation::validate;
use serde_json::Value;

/// An admitted object's warnings for the client and, for a Service, the
/// addresses reserved for it until its write is settled.
pub struct Admitted {
    pub warnings: Vec<String>,
    pub reservation: Option<Reservation>,
}

/// Whether `res` is the core Services resource, whose writes allocate.
pub fn allocates(res: &ResourceInfo) -> bool {
    res.kind == "Service" && res.group.is_empty()
}

/// Decode, default and validate `obj` (a create when `old` is `None`).
/// Services are also given their addresses here; the reservation must go
/// with the store write (see `allocator::settled_write`).
pub async fn admit(
    server: &ApiServer,
    res: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    let warnings = decode(res, obj, mode)?;
    apply_defaults(res.kind, obj);
    let errors = validate(res.kind, obj, old);
    if !errors.is_empty() {
        let name = crate::object_meta::name(obj).to_string();
        return Err(StatusError::invalid(res, &name, &errors).into());
    }
    let reservation = if allocates(res) {
        Some(admit_service(server, obj, old).await?)
    } else {
        None
    };
    Ok(Admitted {
        warnings,
        reservation,
    })
}

/// Give a Service its ClusterIP and NodePorts, refusing ones that are out
/// of range or held by another Service.
async fn admit_service(
    server: &ApiServer,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<Reservation, ApiError> {
    let allocator = &server.service_allocator;
    let allocations = allocator
        .allocations(&server.storage)
        .await
        .map_err(ApiError::Storage)?;
    let network = allocator.network();
    allocations
        .admit(&service_key(obj), obj, old, |svc, in_use| {
            admit_service_with(svc, old, in_use, network, &mut rand::rng())
        })
        .map_err(|errors| StatusError::invalid(&SERVICES, object_meta::name(obj), &errors).into())
}
