//! Pending counts turned into the columns of the hits and sources upserts: the per-day hits (people only: bots are
//! counted apart, though a limited link's bots count toward its limit and are written on its ticks with its
//! hits), and the per-day sources behind `GET /v1/urls/{code}/stats`, at most [`MAX_REFERRERS_PER_FLUSH`]
//! referrer domains per link and day.

use std::collections::HashMap;

use chrono::NaiveDate;
use links::hits::{HitRows, SourceKind, SourceRows};

use super::{
    counts::{Counts, Domains, DIRECT, OTHER},
    visit::Device,
};

/// Referrer domains written per link and day by one flush; the rest are summed as "other". (The database keeps
/// at most this many per link and day too: see `links::hits`.)
pub const MAX_REFERRERS_PER_FLUSH: usize = 50;

/// The people's hits per link and day of `counts`, as the columns of the hits upsert. For the tick's write
/// (`paced` false: the links with a visit limit), the people's hits and the bots' visits (their column only):
/// both count toward the limit, so both are written every tick. For the paced write, the hits of the links
/// without a limit, with the visits of every count by device class, but not a limited link's hits or bots
/// (written on its ticks).
pub(super) fn hit_rows(counts: &Counts, paced: bool) -> HitRows {
    let mut per_day: HashMap<(i64, i32), (i64, [i64; 4]), foldhash::fast::FixedState> =
        HashMap::default();
    for (key, &count) in counts {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let bot = key.device == Device::Bot;
        let (people, device) = match (paced, key.limited) {
            (false, _) => (!bot, bot),
            (true, true) => (false, !bot),
            (true, false) => (!bot, true),
        };
        if !people && !device {
            continue;
        }
        let (hits, devices) = per_day.entry((key.link_id, key.day)).or_default();
        if people {
            *hits += count;
        }
        if device {
            // Device's discriminants are HitRows' device columns: desktop, mobile, tablet, bot.
            devices[key.device as usize] += count;
        }
    }
    let mut rows = HitRows::default();
    for (&(link_id, day), &(hits, devices)) in &per_day {
        let Some(date) = date_of(day) else { continue };
        rows.push(link_id, date, hits, devices);
    }
    rows
}

/// Where the visits of `counts` came from, as the columns of the sources upsert, referrers named from `domains`.
pub(super) fn source_rows(counts: &Counts, domains: &Domains) -> SourceRows {
    let mut sources: HashMap<(i64, i32, SourceKind, u64), i64, foldhash::fast::FixedState> =
        HashMap::default();
    let mut referrers_per_day: HashMap<(i64, i32), usize, foldhash::fast::FixedState> =
        HashMap::default();
    for (key, &count) in counts {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let link_day = (key.link_id, key.day);
        if key.device == Device::Bot {
            continue;
        }
        if key.variant != 0 {
            *sources
                .entry((
                    key.link_id,
                    key.day,
                    SourceKind::Variant,
                    u64::from(key.variant - 1),
                ))
                .or_default() += count;
        }
        if key.country != [0, 0] {
            let country = u64::from(u16::from_be_bytes(key.country));
            *sources
                .entry((key.link_id, key.day, SourceKind::Country, country))
                .or_default() += count;
        }
        let referrer = (key.link_id, key.day, SourceKind::Referrer, key.referrer);
        let referrer = if sources.contains_key(&referrer) || key.referrer <= OTHER {
            referrer
        } else {
            let seen = referrers_per_day.entry(link_day).or_default();
            *seen += 1;
            if *seen <= MAX_REFERRERS_PER_FLUSH {
                referrer
            } else {
                (key.link_id, key.day, SourceKind::Referrer, OTHER)
            }
        };
        *sources.entry(referrer).or_default() += count;
    }
    let mut rows = SourceRows::default();
    for (&(link_id, day, kind, code), &count) in &sources {
        let Some(date) = date_of(day) else { continue };
        let key = match kind {
            // Device classes are columns of the hit rows.
            SourceKind::Device => continue,
            SourceKind::Country => country_name(code),
            SourceKind::Variant => code.to_string(),
            SourceKind::Referrer => match code {
                DIRECT => "direct".to_owned(),
                OTHER => "other".to_owned(),
                hash => domains
                    .get(&hash)
                    .map_or_else(|| "other".to_owned(), |domain| domain.to_string()),
            },
        };
        rows.push(link_id, date, kind, key, count);
    }
    rows
}

fn country_name(code: u64) -> String {
    let [first, second] = u16::try_from(code).unwrap_or(0).to_be_bytes();
    if first.is_ascii_uppercase() && second.is_ascii_uppercase() {
        String::from_utf8_lossy(&[first, second]).into_owned()
    } else {
        "unknown".to_owned()
    }
}

fn date_of(days_since_epoch: i32) -> Option<NaiveDate> {
    const DAYS_FROM_CE_TO_EPOCH: i32 = 719_163;
    NaiveDate::from_num_days_from_ce_opt(days_since_epoch.checked_add(DAYS_FROM_CE_TO_EPOCH)?)
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, time::Duration};

    use super::*;
    use crate::hits::{
        counter::HitCounter,
        fixtures::{day, drained, noon, sorted_sources, visit},
        pending::{take_links, Pending},
    };

    #[test]
    fn bots_are_counted_apart_and_sources_by_kind() {
        let counter = HitCounter::default();
        counter.record(
            7,
            false,
            noon(),
            &visit(Device::Mobile, "News.Example.com", Some(*b"DE")),
        );
        counter.record(
            7,
            false,
            noon(),
            &visit(Device::Desktop, "news.example.com", Some(*b"??")),
        );
        counter.record(7, false, noon(), &visit(Device::Desktop, "", Some(*b"DE")));
        counter.record(
            7,
            false,
            noon(),
            &visit(Device::Bot, "spam.example", Some(*b"FR")),
        );
        let pending = drained(&counter);
        let (hits, sources) = pending.rows();
        assert_eq!(hits.hits, vec![3], "the bot is not a hit");
        let paced = hit_rows(&pending.sources, true);
        assert_eq!(
            paced.devices,
            [vec![2], vec![1], vec![0], vec![1]],
            "desktop, mobile, tablet, bot: written with the paced hits"
        );
        let d = day("2026-11-23");
        let row = |kind: SourceKind, key: &str, hits| (7, d, kind as i16, key.to_owned(), hits);
        let mut expected = vec![
            row(SourceKind::Referrer, "news.example.com", 2),
            row(SourceKind::Referrer, "direct", 1),
            row(SourceKind::Country, "DE", 2),
            row(SourceKind::Country, "unknown", 1),
        ];
        expected.sort();
        assert_eq!(sorted_sources(&sources), expected);
    }

    #[test]
    fn hits_of_links_without_a_limit_wait_for_the_paced_write_of_their_sources() {
        let counter = HitCounter::default();
        let visit = visit(Device::Mobile, "news.example.com", None);
        let mut pending = Pending::new(100_000);
        for _ in 0..3 {
            counter.record(9, false, noon(), &visit);
        }
        counter.record(8, true, noon(), &visit);
        counter.drain_into(&mut pending);
        let ticked: HashSet<i64> = pending.counts.keys().map(|key| key.link_id).collect();
        assert_eq!(
            ticked,
            HashSet::from([8]),
            "only the limited link is written each tick"
        );

        pending.start_writing_sources(Duration::from_secs(30), 4_000);
        let chunk = take_links(&mut pending.writing, pending.chunk_links);
        let hits = hit_rows(&chunk, true);
        let mut rows: Vec<_> = hits.link_ids.into_iter().zip(hits.hits).collect();
        rows.sort_unstable();
        assert_eq!(
            rows,
            vec![(8, 0), (9, 3)],
            "the limited link's row carries its devices, not its hits again"
        );
        let sources = source_rows(&chunk, &pending.writing_domains);
        let mut links = sources.link_ids.clone();
        links.sort_unstable();
        links.dedup();
        assert_eq!(links, vec![8, 9], "sources of both lanes");
    }
}
