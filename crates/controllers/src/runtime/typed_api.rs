//! Typed writes through the client, each taken into the cache at once
//! (the write's answer is newer than anything the watch has delivered).

use std::sync::Arc;

use api::registry::ResourceInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::cache::{Cache, ObjectRef};
use crate::ControllerError;

/// How often a status write re-reads the object after a conflict.
const STATUS_ATTEMPTS: usize = 4;

/// One kind's API, with its cache.
pub struct TypedApi<K> {
    pub client: client::Client,
    pub res: &'static ResourceInfo,
    pub cache: Arc<Cache<K>>,
}

impl<K> Clone for TypedApi<K> {
    fn clone(&self) -> Self {
        TypedApi {
            client: self.client.clone(),
            res: self.res,
            cache: self.cache.clone(),
        }
    }
}

impl<K> TypedApi<K>
where
    K: Resource
        + Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + 'static,
{
    pub fn new(client: client::Client, res: &'static ResourceInfo, cache: Arc<Cache<K>>) -> Self {
        TypedApi { client, res, cache }
    }

    fn encode(&self, obj: &K) -> Result<Value, ControllerError> {
        serde_json::to_value(obj).map_err(|e| ControllerError::Convert {
            kind: self.res.kind,
            detail: e.to_string(),
        })
    }

    fn decode(&self, v: Value) -> Result<K, ControllerError> {
        serde_json::from_value(v).map_err(|e| ControllerError::Convert {
            kind: self.res.kind,
            detail: e.to_string(),
        })
    }

    fn remember(&self, v: Value) -> Result<K, ControllerError> {
        let obj = self.decode(v)?;
        self.cache.apply(obj.clone());
        Ok(obj)
    }

    /// GET from the API (not the cache); None when it does not exist.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<K>, ControllerError> {
        match self.client.get(self.res, r.ns(), &r.name).await {
            Ok(v) => Ok(Some(self.remember(v)?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create(&self, obj: &K) -> Result<K, ControllerError> {
        let r = ObjectRef::of(obj.metadata());
        let v = self
            .client
            .create(self.res, r.ns(), &self.encode(obj)?)
            .await?;
        self.remember(v)
    }

    /// PUT; the object's resourceVersion is the precondition.
    pub async fn replace(&self, obj: &K) -> Result<K, ControllerError> {
        let r = ObjectRef::of(obj.metadata());
        let v = self
            .client
            .replace(self.res, r.ns(), &r.name, &self.encode(obj)?)
            .await?;
        self.remember(v)
    }

    /// Write `status` computed from `current`: PUT of `/status` with
    /// `current`'s resourceVersion; on a conflict, re-read and put the same
    /// status onto the fresh object. A vanished object needs no status.
    pub async fn write_status(
        &self,
        current: &K,
        set_status: impl Fn(&mut K),
    ) -> Result<(), ControllerError> {
        let r = ObjectRef::of(current.metadata());
        let mut obj = current.clone();
        set_status(&mut obj);
        for _ in 0..STATUS_ATTEMPTS {
            match self
                .client
                .replace_status(self.res, r.ns(), &r.name, &self.encode(&obj)?)
                .await
            {
                Ok(v) => {
                    self.remember(v)?;
                    return Ok(());
                }
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) if e.code() == Some(409) => match self.get(&r).await? {
                    Some(fresh) => {
                        obj = fresh;
                        set_status(&mut obj);
                    }
                    None => return Ok(()),
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(ControllerError::from(client::ClientError::Status {
            code: 409,
            reason: "Conflict".into(),
            message: format!("status of {} {r} kept changing", self.res.kind),
            body: Value::Null,
        }))
    }

    /// DELETE; an object already gone is fine. The answer (the object
    /// marked for graceful deletion, or removed) goes into the cache.
    pub async fn delete(&self, r: &ObjectRef) -> Result<(), ControllerError> {
        match self.client.delete(self.res, r.ns(), &r.name).await {
            Ok(v) => {
                // A `Status` answer carries no object; the watch will tell.
                let is_object = v.get("metadata").is_some_and(Value::is_object)
                    && v.get("kind").and_then(Value::as_str) != Some("Status");
                if is_object {
                    let obj = self.decode(v)?;
                    if obj.metadata().deletion_timestamp.is_some() {
                        self.cache.apply(obj);
                    } else {
                        self.cache.remove(&obj);
                    }
                }
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
