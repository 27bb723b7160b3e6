//! `GET /v1/urls/{code}/stats`: where a link's clicks came from over the last N days — referrer domains (top 10
//! and the rest as "other"), device classes, countries (when the redirect is told a CDN's country header), and
//! bots, counted apart from people's hits. Counted by the redirect on each hit and written with its flush.

use actix_web::{web, HttpResponse};
use links::hits::SourceKind;
use serde::Serialize;

use crate::{
    auth::Caller,
    deadline::Deadline,
    errors::ApiError,
    routes::{
        body::{ErrorBody, RateLimited, Unauthorized, Unavailable},
        hits::DaysQuery,
    },
    state::AppState,
};

/// Referrers and countries listed by name; the rest are summed as "other".
const TOP: usize = 10;

/// Where a link's clicks came from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsBody {
    /// The short code.
    code: String,
    /// The days counted, ending today.
    days: i32,
    /// People's hits over those days (bots not included).
    total: i64,
    /// Hits from bots (crawlers, link previewers, scripts) over those days.
    bots: i64,
    /// Referrer domains, most hits first: the top 10, then "other" for the rest; "direct" is visits without a
    /// usable `Referer`.
    referrers: Vec<ReferrerHits>,
    /// People's hits by device class.
    devices: Devices,
    /// Countries (two letters, or "unknown"), most hits first: the top 10, then "other". Empty unless the
    /// redirect runs with `--country-header`.
    countries: Vec<CountryHits>,
    /// People's hits per variant, in the link's order; only for a link with variants.
    #[serde(skip_serializing_if = "Option::is_none")]
    variants: Option<Vec<VariantHits>>,
}

/// Hits of one variant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VariantHits {
    /// Its target.
    long_url: String,
    /// Its weight.
    weight: u16,
    /// People sent to it over the days.
    hits: i64,
}

/// Hits from one referrer domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferrerHits {
    /// e.g. `news.example.com` (without `www.`), `direct` or `other`.
    domain: String,
    /// Hits.
    hits: i64,
}

/// Hits from one country.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountryHits {
    /// e.g. `DE`, `unknown` or `other`.
    country: String,
    /// Hits.
    hits: i64,
}

/// People's hits by device class.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Devices {
    /// Desktop browsers (and what is not known to be anything else).
    desktop: i64,
    /// Phones.
    mobile: i64,
    /// Tablets.
    tablet: i64,
}

/// `GET /v1/urls/{code}/stats?days=N`: where the caller's link's clicks came from. Redirects sum where hits came
/// from (and the hits of links without a visit limit) for `--hit-sources-flush-interval-ms` (30 s by default) and
/// write them over the next such interval, so up to about two intervals are not in yet.
#[utoipa::path(
    get,
    path = "/v1/urls/{code}/stats",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), DaysQuery, crate::routes::DomainQuery),
    responses(
        (status = 200, description = "Where the clicks came from", body = StatsBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 422, description = "invalid_days, invalid_query", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    at: crate::routes::LinkAt,
    query: web::Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = query.days()?;
    let today = state.clock.now().date_naive();
    let sources = state
        .reads
        .hit_sources(caller.owner_id, &at.key, today, days, deadline.budget()?)
        .await?
        .ok_or_else(|| at.not_found())?;
    let of = |wanted: SourceKind| {
        sources
            .rows
            .iter()
            .filter(move |(kind, _, _)| *kind == wanted)
            .map(|(_, key, hits)| (key.as_str(), *hits))
    };
    let variants = variant_hits(
        &state,
        caller.owner_id,
        &at,
        of(SourceKind::Variant),
        &deadline,
    )
    .await?;
    let mut devices = Devices::default();
    let mut bots = 0;
    for (device, hits) in of(SourceKind::Device) {
        match device {
            "mobile" => devices.mobile += hits,
            "tablet" => devices.tablet += hits,
            "bot" => bots += hits,
            _ => devices.desktop += hits,
        }
    }
    Ok(HttpResponse::Ok().json(StatsBody {
        code: at.code,
        days,
        total: sources.total,
        bots,
        referrers: top(of(SourceKind::Referrer))
            .into_iter()
            .map(|(domain, hits)| ReferrerHits { domain, hits })
            .collect(),
        devices,
        countries: top(of(SourceKind::Country))
            .into_iter()
            .map(|(country, hits)| CountryHits { country, hits })
            .collect(),
        variants,
    }))
}

/// The link's variants as it has them now, each with the hits counted under its index. Hits of an index the
/// link no longer has (its variants were cut down) are not listed.
async fn variant_hits<'a>(
    state: &AppState,
    owner_id: i64,
    at: &crate::routes::LinkAt,
    counted: impl Iterator<Item = (&'a str, i64)>,
    deadline: &Deadline,
) -> Result<Option<Vec<VariantHits>>, ApiError> {
    let Some(found) = state
        .reads
        .find_owned(owner_id, &at.key, deadline.budget()?)
        .await?
    else {
        return Ok(None);
    };
    let Some(routing) = links::model::routing_of(found.link.routing.as_deref())
        .filter(|routing| !routing.variants.is_empty())
    else {
        return Ok(None);
    };
    let mut hits = vec![0; routing.variants.len()];
    for (index, count) in counted {
        if let Some(slot) = index
            .parse::<usize>()
            .ok()
            .and_then(|index| hits.get_mut(index))
        {
            *slot += count;
        }
    }
    Ok(Some(
        routing
            .variants
            .iter()
            .zip(hits)
            .map(|(variant, hits)| VariantHits {
                long_url: variant.long_url.clone(),
                weight: variant.weight,
                hits,
            })
            .collect(),
    ))
}

/// The [`TOP`] keys by hits (ties by name), then "other" with the rest (the stored "other" included).
fn top<'a>(counts: impl Iterator<Item = (&'a str, i64)>) -> Vec<(String, i64)> {
    let mut named: Vec<(&str, i64)> = Vec::new();
    let mut other = 0;
    for (key, hits) in counts {
        if key == "other" {
            other += hits;
        } else {
            named.push((key, hits));
        }
    }
    named.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    other += named.iter().skip(TOP).map(|(_, hits)| hits).sum::<i64>();
    named.truncate(TOP);
    let mut listed: Vec<(String, i64)> = named
        .into_iter()
        .map(|(key, hits)| (key.to_owned(), hits))
        .collect();
    if other > 0 {
        listed.push(("other".to_owned(), other));
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_ten_are_listed_and_the_rest_summed_as_other() {
        let counts: Vec<(String, i64)> = (1..=12).map(|n| (format!("d{n}"), n)).collect();
        let mut with_stored_other = counts.clone();
        with_stored_other.push(("other".into(), 100));
        let listed = top(with_stored_other
            .iter()
            .map(|(key, hits)| (key.as_str(), *hits)));
        assert_eq!(listed.len(), 11);
        assert_eq!(listed[0], ("d12".to_owned(), 12));
        assert_eq!(listed[9], ("d3".to_owned(), 3));
        assert_eq!(listed[10], ("other".to_owned(), 100 + 1 + 2));
        let few = top([("a", 1), ("b", 2)].into_iter());
        assert_eq!(few, vec![("b".to_owned(), 2), ("a".to_owned(), 1)]);
    }
}
