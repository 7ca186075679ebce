//! `/search`: the events whose text matches what a person typed, from the
//! full-text index (`store::search`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::ApiQuery;
use crate::server::store::{MAX_HITS, words};
use crate::wire::{ErrorAnswer, SearchAnswer};

/// The longest query accepted, in bytes.
const MAX_QUERY: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words that must all appear (the last one may be the start of a word)
    q: String,
    /// Only the sessions of this project directory
    project_dir: Option<String>,
    /// At most this many hits (default and most: 100)
    limit: Option<u32>,
}

/// `GET /search?q=TEXT[&project_dir=P][&limit=N]`
#[utoipa::path(get, path = "/search", tag = "events", params(SearchQuery),
    responses(
        (status = 200, description = "The events whose prompt, answer, narration or tool input hold every word, best first", body = SearchAnswer),
        (status = 400, description = "No word to search for, or a query over 1,000 bytes", body = ErrorAnswer),
    ))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<SearchAnswer>, ApiError> {
    if query.q.len() > MAX_QUERY {
        return Err(ApiError::bad_request(format!(
            "q is longer than {MAX_QUERY} bytes"
        )));
    }
    if words(&query.q).is_empty() {
        return Err(ApiError::bad_request("q holds no word to search for"));
    }
    let limit = query.limit.unwrap_or(MAX_HITS).clamp(1, MAX_HITS);
    let hits = state
        .store
        .search(query.q, query.project_dir, limit)
        .await?;
    Ok(Json(SearchAnswer { hits }))
}
