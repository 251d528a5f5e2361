//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder};
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
    modifiers(&Credentials, &Contract)
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

/// What every `/api/v1` operation shares, written once instead of on each
/// handler: ids in paths are UUIDs, the `X-Request-Timeout` header, and the
/// statuses the layers in front of every handler answer with (bad input,
/// credentials, the rate limit, admission control, the deadline, storage).
struct Contract;

impl Contract {
    /// The statuses an operation can answer with beyond its own, and why.
    fn statuses(operation: &Operation, has_id: bool) -> Vec<(&'static str, &'static str)> {
        let mut statuses = vec![
            ("400", "Malformed input: a path id, a query parameter or X-Request-Timeout"),
            ("500", "Storage failed"),
            ("503", "The gateway is at its concurrency limit (see Retry-After), or a dependency is unavailable"),
            ("504", "The request's deadline passed"),
        ];
        if operation.security.is_some() {
            statuses.extend([("401", "Missing, unknown or expired credential"), ("429", "The tenant's rate limit")]);
        }
        if operation.request_body.is_some() {
            statuses.extend([
                ("413", "The body is too large"),
                ("415", "The body is not JSON"),
                ("422", "The JSON does not fit the schema"),
            ]);
        }
        if has_id {
            statuses.push(("404", "No such record for this tenant"));
        }
        statuses
    }
}

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let uuid: RefOr<utoipa::openapi::Schema> = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into();
        let timeout = ParameterBuilder::new()
            .name("X-Request-Timeout")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The request's deadline, at least 10ms (e.g. `250ms`, `2s`); longer ones are cut to the gateway's request_timeout",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^([1-9][0-9]{4,8}us|[1-9][0-9]{1,6}ms|[1-9][0-9]{0,5}[smh])$")),
            ))
            .build();
        let error = Content::new(Some(Ref::from_schema_name("ErrorBody")));
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") || path.ends_with("/openapi.json") {
                continue;
            }
            let has_id = path.contains("_id}");
            let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete, &mut item.put];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter
                        && parameter.parameter_in == ParameterIn::Path
                        && parameter.name.ends_with("_id")
                    {
                        parameter.schema = Some(uuid.clone());
                    }
                }
                operation.parameters.get_or_insert_with(Vec::new).push(timeout.clone().into());
                for (status, description) in Contract::statuses(operation, has_id) {
                    let mut response =
                        ResponseBuilder::new().description(description).content("application/json", error.clone());
                    if matches!(status, "503" | "429") {
                        let seconds = ObjectBuilder::new().schema_type(Type::Integer);
                        response = response.header("Retry-After", Header::new(seconds));
                    }
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| response.build().into());
                }
            }
        }
    }
}

pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
