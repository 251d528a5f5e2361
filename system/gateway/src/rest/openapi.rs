//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::handlers;

/// The REST API as OpenAPI.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Q2O gateway", description = "REST API of the Q2O reference system."),
    paths(
        handlers::login,
        handlers::list_projects,
        handlers::create_project,
        handlers::get_project,
        handlers::update_project,
        handlers::delete_project,
        handlers::submit_task,
        handlers::list_tasks,
        handlers::project_status,
        handlers::get_task,
        handlers::search,
        handlers::autocomplete,
        handlers::health,
        handlers::ready,
        handlers::metrics,
    ),
    modifiers(&Credentials)
)]
pub struct ApiDoc;

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
