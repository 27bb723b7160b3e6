//! `GET /v1/urls/{code}/hits`: a link's hits per day over the last N days (UTC), days without hits as 0, for
//! the web page's chart.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::{
    auth::Caller,
    deadline::Deadline,
    errors::{ApiError, ErrorCode},
    routes::body::{ErrorBody, RateLimited, Unauthorized, Unavailable},
    state::AppState,
};

/// Default and largest number of days.
const DEFAULT_DAYS: i32 = 30;
const MAX_DAYS: i32 = 365;

/// Query of the hits and stats calls.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// Days to count, ending today (UTC): 1 to 365 (default 30).
    #[param(minimum = 1, maximum = 365)]
    days: Option<i32>,
    /// Read by [`crate::routes::LinkAt`]; documented by [`crate::routes::DomainQuery`].
    #[serde(default)]
    #[param(ignore)]
    #[allow(dead_code)]
    domain: Option<String>,
}

impl DaysQuery {
    /// The days asked for, checked.
    pub fn days(&self) -> Result<i32, ApiError> {
        let days = self.days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::InvalidField {
                code: ErrorCode::InvalidDays,
                message: format!("days must be between 1 and {MAX_DAYS}, not {days}"),
            });
        }
        Ok(days)
    }
}

/// A link's hits per day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HitsBody {
    /// The short code.
    code: String,
    /// Hits over the days below.
    total: i64,
    /// One entry per day, oldest first, today last; days without hits are 0.
    days: Vec<DayBody>,
}

/// Hits on one day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayBody {
    /// YYYY-MM-DD (UTC).
    #[schema(example = "2026-11-23")]
    day: String,
    /// Redirects counted that day.
    hits: i64,
}

/// `GET /v1/urls/{code}/hits?days=N`: the caller's link's hits per day. Hits reach the database when a redirect
/// flushes its counts, so the last flush interval is not in yet.
#[utoipa::path(
    get,
    path = "/v1/urls/{code}/hits",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), DaysQuery, crate::routes::DomainQuery),
    responses(
        (status = 200, description = "Hits per day, zero days filled", body = HitsBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 422, description = "invalid_days, invalid_query", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn hits(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    at: crate::routes::LinkAt,
    query: web::Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = query.days()?;
    let today = state.clock.now().date_naive();
    let per_day = state
        .reads
        .daily_hits(caller.owner_id, &at.key, today, days, deadline.budget()?)
        .await?
        .ok_or_else(|| at.not_found())?;
    Ok(HttpResponse::Ok().json(HitsBody {
        code: at.code,
        total: per_day.iter().map(|day| day.hits).sum(),
        days: per_day
            .iter()
            .map(|day| DayBody {
                day: day.day.format("%Y-%m-%d").to_string(),
                hits: day.hits,
            })
            .collect(),
    }))
}
