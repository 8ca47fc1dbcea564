//! `GET /api/v1/me`: who the token belongs to, so clients and the UI can greet and route.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::organisation::OrgKind;
use crate::domain::role::Role;
use crate::domain::user::Actor;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    user_id: i64,
    name: String,
    role: Role,
    organisation: MeOrganisation,
}

#[derive(Serialize, ToSchema)]
pub struct MeOrganisation {
    code: String,
    name: String,
    kind: OrgKind,
}

/// The signed-in user, their role and organisation.
#[utoipa::path(get, path = "/api/v1/me", tag = "users", responses((status = 200, body = Me), (status = 401)))]
async fn me(actor: Actor) -> Json<Me> {
    Json(Me {
        user_id: actor.user_id,
        name: actor.user_name,
        role: actor.role,
        organisation: MeOrganisation { code: actor.org_code, name: actor.org_name, kind: actor.org_kind },
    })
}
