//! `/manage`: health, the active plugin set, and reloading it.
//!
//! Operators swap a channel by editing the plugin set and reloading, by this endpoint or SIGHUP;
//! both go through [`Reloader`], which re-reads the configuration file and hands the set to the
//! plugin host, where a set that fails to load is rejected and the old one keeps serving.
//! Secrets and endpoints outside the plugin set take effect at the next start.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::{Config, LoadOptions};
use crate::plugins::PluginHost;

/// Reloads the plugin set from the configuration.
pub struct Reloader {
    /// How the configuration was loaded at start; reloading reads the same files again.
    pub options: LoadOptions,
    /// The plugin host.
    pub plugins: Arc<PluginHost>,
}

impl Reloader {
    /// Re-reads the configuration and loads its plugin set; returns the new generation.
    pub async fn reload(&self) -> anyhow::Result<u64> {
        let config = Config::load(&self.options).await?;
        Ok(self.plugins.load(&config.plugin_set()).await?.generation())
    }
}

/// The `/manage` routes.
pub fn router(reloader: Arc<Reloader>) -> Router {
    Router::new()
        .route("/manage/health", get(health))
        .route("/manage/plugins", get(plugins))
        .route("/manage/plugins/reload", post(reload))
        .with_state(reloader)
}

/// UP when every plugin of the active set can be instantiated now.
async fn health(State(reloader): State<Arc<Reloader>>) -> Response {
    let set = reloader.plugins.current();
    let mut components = serde_json::Map::new();
    let mut up = true;
    for plugin in set.plugins() {
        let status = match plugin.check_instantiation().await {
            Ok(()) => json!({ "status": "UP" }),
            Err(error) => {
                up = false;
                json!({ "status": "DOWN", "error": error.to_string() })
            }
        };
        components.insert(plugin.name().to_owned(), status);
    }
    let body = json!({ "status": if up { "UP" } else { "DOWN" }, "components": { "plugins": components } });
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn plugins(State(reloader): State<Arc<Reloader>>) -> Json<serde_json::Value> {
    let set = reloader.plugins.current();
    let plugins: Vec<_> = set
        .plugins()
        .map(|plugin| {
            let description = plugin.description();
            json!({
                "name": plugin.name(),
                "service": description.service,
                "description": description.name,
                "version": description.version,
                "file": plugin.path().display().to_string(),
                "sha256": plugin.sha256(),
            })
        })
        .collect();
    Json(json!({ "generation": set.generation(), "plugins": plugins }))
}

async fn reload(State(reloader): State<Arc<Reloader>>) -> Response {
    match reloader.reload().await {
        Ok(generation) => Json(json!({ "generation": generation })).into_response(),
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!(%message, "plugin set rejected; the active set keeps serving");
            let body = json!({
                "error": "plugin set rejected",
                "message": message,
                "generation": reloader.plugins.current().generation(),
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}
