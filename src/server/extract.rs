//! Request extractors whose rejections are JSON `{"detail"}` answers, so that
//! malformed bodies, paths and query strings are reported like every other
//! error instead of in axum's plain-text defaults.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;

/// A JSON object body, parsed into `T`, with the object itself kept for
/// storing exactly the fields that were sent.
pub struct JsonBody<T> {
    pub value: T,
    pub object: Map<String, Value>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_rejection(r, state.max_body_bytes))?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "the request body is empty; send a JSON object",
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::unprocessable("the body must be a JSON object"));
        }
        let parsed = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                ApiError::unprocessable(format!("invalid body: {}", e.inner()))
            } else {
                ApiError::unprocessable(format!("invalid body: {path}: {}", e.inner()))
            }
        })?;
        let Value::Object(object) = value else {
            return Err(ApiError::unprocessable("the body must be a JSON object"));
        };
        Ok(JsonBody {
            value: parsed,
            object,
        })
    }
}

fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    } else {
        ApiError::new(
            status,
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    }
}

/// Path parameters; a bad one is a 400 with a JSON detail.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::bad_request(format!("bad path: {}", r.body_text())))
    }
}

/// A query string; a bad one is a 400 with a JSON detail.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::bad_request(format!("bad query string: {}", r.body_text())))
    }
}
