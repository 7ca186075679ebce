//! Every failure becomes a status and a JSON body `{"detail": "..."}` that
//! says what is wrong. Errors that are the client's fault get a 4xx; our own
//! are logged in full and answered with a short, generic detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::store::StoreError;

/// An HTTP error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

#[derive(Serialize)]
struct Detail<'a> {
    detail: &'a str,
}

impl ApiError {
    /// An answer with this status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    /// 400: the request cannot be understood.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// 422: well-formed JSON with the wrong content.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
}

/// Why a request was refused, kept on the answer for [`log_refusals`].
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Detail {
                detail: &self.detail,
            }),
        )
            .into_response();
        response.extensions_mut().insert(Refusal(self.detail));
        response
    }
}

/// Logs every refused request (a 4xx) at info level, with its reason, so
/// that a client's mistakes can be traced from the server's side.
pub async fn log_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status().is_client_error() {
        let reason = response
            .extensions()
            .get::<Refusal>()
            .map_or("", |r| r.0.as_str());
        tracing::info!(
            "refused {method} {path}: {} {reason}",
            response.status().as_u16()
        );
    }
    response
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(d) => ApiError::not_found(d),
            StoreError::Conflict(d) => ApiError::new(StatusCode::CONFLICT, d),
            StoreError::Invalid(d) => ApiError::unprocessable(d),
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ),
            StoreError::Down(why) | StoreError::Contention(why) => {
                tracing::warn!("{why}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why)
            }
            other => {
                tracing::error!("storage failure: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage error; the server log has the cause",
                )
            }
        }
    }
}
