//! The durable queue of events in Redis, under one hash tag so that every key lands in one slot of a cluster
//! (the scripts below touch two keys at once):
//! - `{prefix events}`: the stream. The redirect and the shortener append; the consumer group `delivery` hands
//!   each entry to one shortener, which acknowledges it once every webhook has it or has a retry scheduled. An
//!   entry a consumer took and never acknowledged (it died) is claimed by another after [`Queue::claim_stale`]'s
//!   idle time. Capped near `max_len` entries: Redis memory is bounded, and what a cut removes before it was
//!   delivered is counted where it is noticed.
//! - `{…}:retry` and `{…}:retry-jobs`: deliveries that failed, by when they are due, with what to send; a
//!   worker takes due ones with a lease ([`Queue::due`]), so one that dies mid-delivery leaves the job to come
//!   due again. Bounded by `max_retries` jobs.
//! - `{…}:watch`: owners with a live stream open, scored by when that registration lapses.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use fred::{
    clients::Client,
    interfaces::{ClientLike, LuaInterface, SortedSetsInterface, StreamsInterface},
    types::Value,
};
use links::cache::CacheOptions;

use crate::event::{Event, Kind};

/// Entries the stream keeps, about (`MAXLEN ~`): at ~600 bytes each in Redis, ~600 MiB at most, and at 10,000
/// clicks a second 100 s of delivery falling behind.
pub const MAX_QUEUED: u64 = 1_000_000;

/// Deliveries waiting for a retry, at most: past it a failed delivery is dropped, counted.
pub const MAX_RETRIES: u64 = 1_000_000;

/// The longest a read in the consumer group waits for entries.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// The consumer group every shortener delivers in.
const GROUP: &str = "delivery";

/// A Redis failure: the caller counts what it could not queue or take.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis failed or did not answer in time.
    #[error("redis failed: {0}")]
    Redis(#[from] fred::error::Error),
}

/// An event taken from the stream, to acknowledge once handled.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The stream entry's id.
    pub entry: String,
    /// The event.
    pub event: Event,
}

/// A delivery to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The webhook.
    pub hook: i64,
    /// When the first attempt failed (Unix milliseconds): the job is dropped a retention period after.
    pub first_failed_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// What to send.
    pub event: Event,
}

impl Retry {
    /// Its name in the retry set: one job per webhook and event.
    pub fn member(&self) -> String {
        format!("{}:{}", self.hook, self.event.id)
    }

    fn to_json(&self) -> String {
        serde_json::json!({
            "hook": self.hook,
            "first": self.first_failed_ms,
            "attempts": self.attempts,
            "id": self.event.id,
            "kind": self.event.kind.as_str(),
            "owner": self.event.owner,
            "link": self.event.link,
            "body": self.event.body,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(Self {
            hook: value["hook"].as_i64()?,
            first_failed_ms: value["first"].as_i64()?,
            attempts: u32::try_from(value["attempts"].as_u64()?).ok()?,
            event: Event {
                id: value["id"].as_str()?.to_owned(),
                kind: Kind::parse(value["kind"].as_str()?)?,
                owner: value["owner"].as_i64()?,
                link: value["link"].as_str()?.to_owned(),
                body: value["body"].as_str()?.to_owned(),
            },
        })
    }
}

/// Takes the due jobs (score ≤ ARGV[1]), at most ARGV[3], leasing each until ARGV[2]; a job whose body is gone
/// is dropped.
const DUE_SCRIPT: &str =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local jobs = {}
for _, member in ipairs(due) do
  local job = redis.call('HGET', KEYS[2], member)
  if job then
    redis.call('ZADD', KEYS[1], ARGV[2], member)
    table.insert(jobs, job)
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return jobs";

/// Schedules a job (ARGV[1] member, ARGV[2] body, ARGV[3] due) unless ARGV[4] jobs are already waiting and this
/// one is new: 1 scheduled, 0 refused.
const SCHEDULE_SCRIPT: &str = "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1";

/// Removes a job (ARGV[1]).
const FINISH_SCRIPT: &str = "redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1";

/// The queue's keys and its own Redis client.
#[derive(Clone)]
pub struct Queue {
    client: Client,
    /// For the consumer group's blocking reads only: a blocked command holds its connection, and every other
    /// command on it would wait behind.
    reader: Option<Client>,
    stream: String,
    retry: String,
    jobs: String,
    watch: String,
    max_len: i64,
    max_retries: i64,
}

impl Queue {
    /// A queue under `options.prefix` on a client of its own (the cache's commands never wait behind a batch of
    /// events), connecting in the background: a Redis that is down now fails commands, which callers count. A
    /// process that takes entries in the consumer group ([`take`](Self::take)) asks for `reader`, a second
    /// connection for that blocking read.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn start(options: &CacheOptions, reader: bool) -> Result<Self, QueueError> {
        let connect = |block: Option<Duration>| -> Result<Client, QueueError> {
            let client = options
                .client_builder()?
                .with_connection_config(|connection| connection.max_command_attempts = 1)
                .with_performance_config(|performance| {
                    if let Some(block) = block {
                        performance.default_command_timeout += block;
                    }
                })
                .with_config(|config| config.fail_fast = false)
                .build()?;
            let _reconnect_task = client.connect();
            Ok(client)
        };
        let client = connect(None)?;
        let reader = if reader {
            Some(connect(Some(MAX_WAIT))?)
        } else {
            None
        };
        let stream = format!("{{{}events}}", options.prefix);
        Ok(Self {
            client,
            reader,
            retry: format!("{stream}:retry"),
            jobs: format!("{stream}:retry-jobs"),
            watch: format!("{stream}:watch"),
            stream,
            max_len: i64::try_from(MAX_QUEUED).unwrap_or(i64::MAX),
            max_retries: i64::try_from(MAX_RETRIES).unwrap_or(i64::MAX),
        })
    }

    /// Appends `events` in one round trip.
    ///
    /// # Errors
    /// When Redis fails: none of them may have been queued.
    pub async fn publish(&self, events: &[Event]) -> Result<(), QueueError> {
        if events.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        for event in events {
            let fields = vec![
                ("k", event.kind.as_str().to_owned()),
                ("o", event.owner.to_string()),
                ("l", event.link.clone()),
                ("i", event.id.clone()),
                ("b", event.body.clone()),
            ];
            let () = pipeline
                .xadd(
                    &self.stream,
                    false,
                    ("MAXLEN", "~", self.max_len),
                    "*",
                    fields,
                )
                .await?;
        }
        let answers: Vec<Value> = pipeline.all().await?;
        drop(answers);
        Ok(())
    }

    /// Makes the consumer group, reading from the stream's first entry (events queued before any shortener made
    /// it are delivered too); an existing group is kept.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn ensure_group(&self) -> Result<(), QueueError> {
        match self
            .client
            .xgroup_create::<Value, _, _, _>(&self.stream, GROUP, "0", true)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.details().contains("BUSYGROUP") => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Up to `count` entries no consumer has taken yet, waiting up to `wait` for one. Entries that do not read
    /// as events are acknowledged and skipped.
    ///
    /// # Errors
    /// When Redis fails (a group that vanished, Redis restarted empty, is made again first).
    pub async fn take(
        &self,
        consumer: &str,
        count: u64,
        wait: Duration,
    ) -> Result<Vec<Taken>, QueueError> {
        let reader = self.reader.as_ref().unwrap_or(&self.client);
        let read = reader
            .xreadgroup::<Value, _, _, _, _>(
                GROUP,
                consumer,
                Some(count),
                Some(u64::try_from(wait.min(MAX_WAIT).as_millis()).unwrap_or(u64::MAX)),
                false,
                &self.stream,
                ">",
            )
            .await;
        let read = match read {
            Err(error) if error.details().contains("NOGROUP") => {
                self.ensure_group().await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        self.events_of(read).await
    }

    /// Entries another consumer took and has not acknowledged for `idle`, now this consumer's, and how many
    /// such entries had been cut from the stream before anyone delivered them.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn claim_stale(
        &self,
        consumer: &str,
        idle: Duration,
        count: u64,
    ) -> Result<(Vec<Taken>, usize), QueueError> {
        let answer: Value = self
            .client
            .xautoclaim(
                &self.stream,
                GROUP,
                consumer,
                u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
                "0-0",
                Some(count),
                false,
            )
            .await?;
        let Value::Array(mut parts) = answer else {
            return Ok((Vec::new(), 0));
        };
        let cut = match parts.get(2) {
            Some(Value::Array(ids)) => ids.len(),
            _ => 0,
        };
        let entries = if parts.len() > 1 {
            parts.swap_remove(1)
        } else {
            Value::Null
        };
        let mut taken = Vec::new();
        let mut unreadable = Vec::new();
        if let Value::Array(entries) = entries {
            for entry in entries {
                match entry_of(entry) {
                    Some(Ok(found)) => taken.push(found),
                    Some(Err(id)) => unreadable.push(id),
                    None => {}
                }
            }
        }
        self.ack(&unreadable).await?;
        Ok((taken, cut))
    }

    /// Acknowledges entries: handled, never handed out again.
    ///
    /// # Errors
    /// When Redis fails (they are handed out again after the idle time: at least once).
    pub async fn ack(&self, entries: &[String]) -> Result<(), QueueError> {
        if entries.is_empty() {
            return Ok(());
        }
        let _: Value = self
            .client
            .xack(&self.stream, GROUP, entries.to_vec())
            .await?;
        Ok(())
    }

    /// The id of the stream's last entry (`0-0` when empty): where a reader of live events starts.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn last_entry(&self) -> Result<String, QueueError> {
        let last: Value = self
            .client
            .xrevrange(&self.stream, "+", "-", Some(1))
            .await?;
        let id = match last {
            Value::Array(entries) => entries.into_iter().next().and_then(|entry| match entry {
                Value::Array(mut parts) if !parts.is_empty() => parts.swap_remove(0).into_string(),
                _ => None,
            }),
            _ => None,
        };
        Ok(id.unwrap_or_else(|| "0-0".to_owned()))
    }

    /// Entries after `after`, for live streams (outside the group: every reader sees every entry), without
    /// waiting; returns them and the id to read after next.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn follow(
        &self,
        after: &str,
        count: u64,
    ) -> Result<(Vec<Event>, String), QueueError> {
        let read: Value = self
            .client
            .xread(Some(count), None, &self.stream, after)
            .await?;
        let mut last = after.to_owned();
        let mut events = Vec::new();
        for entry in stream_entries(read) {
            match entry {
                Ok(taken) => {
                    last = taken.entry;
                    events.push(taken.event);
                }
                Err(id) => last = id,
            }
        }
        Ok((events, last))
    }

    /// Schedules `job` at `due`; `false` when the retry set is full (the delivery is dropped).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn schedule(&self, job: &Retry, due: DateTime<Utc>) -> Result<bool, QueueError> {
        let scheduled: i64 = self
            .client
            .eval(
                SCHEDULE_SCRIPT,
                vec![self.retry.clone(), self.jobs.clone()],
                vec![
                    job.member(),
                    job.to_json(),
                    due.timestamp_millis().to_string(),
                    self.max_retries.to_string(),
                ],
            )
            .await?;
        Ok(scheduled == 1)
    }

    /// Up to `count` jobs due by `now`, each leased for `lease` (it comes due again then unless finished or
    /// scheduled anew).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        count: u64,
    ) -> Result<Vec<Retry>, QueueError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let jobs: Vec<String> = self
            .client
            .eval(
                DUE_SCRIPT,
                vec![self.retry.clone(), self.jobs.clone()],
                vec![
                    now.timestamp_millis().to_string(),
                    now.timestamp_millis().saturating_add(lease_ms).to_string(),
                    count.to_string(),
                ],
            )
            .await?;
        Ok(jobs
            .iter()
            .filter_map(|job| Retry::from_json(job))
            .collect())
    }

    /// Removes a job: delivered, or given up.
    ///
    /// # Errors
    /// When Redis fails (the job comes due again when its lease ends: at least once).
    pub async fn finish(&self, job: &Retry) -> Result<(), QueueError> {
        let _: i64 = self
            .client
            .eval(
                FINISH_SCRIPT,
                vec![self.retry.clone(), self.jobs.clone()],
                vec![job.member()],
            )
            .await?;
        Ok(())
    }

    /// Jobs waiting for a retry.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn retries_waiting(&self) -> Result<u64, QueueError> {
        Ok(self.client.zcard(&self.retry).await?)
    }

    /// Notes that `owner` has a live stream open until `until`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn watch(&self, owner: i64, until: DateTime<Utc>) -> Result<(), QueueError> {
        let _: Value = self
            .client
            .zadd(
                &self.watch,
                None,
                None,
                false,
                false,
                (until.timestamp_millis() as f64, owner.to_string()),
            )
            .await?;
        Ok(())
    }

    /// The owners with a live stream open at `now` (and drops the lapsed ones).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn watchers(&self, now: DateTime<Utc>) -> Result<Vec<i64>, QueueError> {
        let now_ms = now.timestamp_millis() as f64;
        let _: Value = self
            .client
            .zremrangebyscore(&self.watch, f64::NEG_INFINITY, now_ms)
            .await?;
        let owners: Vec<String> = self
            .client
            .zrangebyscore(&self.watch, now_ms, f64::INFINITY, false, None)
            .await?;
        Ok(owners
            .iter()
            .filter_map(|owner| owner.parse().ok())
            .collect())
    }

    /// Quits the clients.
    pub async fn quit(&self) {
        let _ = self.client.quit().await;
        if let Some(reader) = &self.reader {
            let _ = reader.quit().await;
        }
    }

    async fn events_of(&self, read: Value) -> Result<Vec<Taken>, QueueError> {
        let mut taken = Vec::new();
        let mut unreadable = Vec::new();
        for entry in stream_entries(read) {
            match entry {
                Ok(found) => taken.push(found),
                Err(id) => unreadable.push(id),
            }
        }
        self.ack(&unreadable).await?;
        Ok(taken)
    }
}

/// The entries of an `XREAD`/`XREADGROUP` answer on one stream (nil when there are none; an array of
/// `[key, entries]` pairs, or a map of key to entries in RESP3): each the event, or the id of an entry that is
/// no event.
fn stream_entries(read: Value) -> Vec<Result<Taken, String>> {
    let streams: Vec<Value> = match read {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Some(pair.swap_remove(1)),
                _ => None,
            })
            .collect(),
        Value::Map(map) => map.inner().into_values().collect(),
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|entries| match entries {
            Value::Array(entries) => entries,
            _ => Vec::new(),
        })
        .filter_map(entry_of)
        .collect()
}

/// An entry of `XAUTOCLAIM`'s answer: the event, or the id of an entry that is no event; `None` for no entry.
fn entry_of(entry: Value) -> Option<Result<Taken, String>> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let mut parts = parts.into_iter();
    let id = parts.next()?.into_string()?;
    let fields: HashMap<String, String> = match parts.next() {
        Some(Value::Array(flat)) => flat
            .chunks(2)
            .filter_map(|pair| Some((pair.first()?.as_string()?, pair.get(1)?.as_string()?)))
            .collect(),
        Some(Value::Map(map)) => map
            .inner()
            .into_iter()
            .filter_map(|(key, value)| Some((key.into_string()?, value.into_string()?)))
            .collect(),
        _ => return Some(Err(id)),
    };
    Some(match event_of(&fields) {
        Some(event) => Ok(Taken { entry: id, event }),
        None => Err(id),
    })
}

fn event_of(fields: &HashMap<String, String>) -> Option<Event> {
    Some(Event {
        kind: Kind::parse(fields.get("k")?)?,
        owner: fields.get("o")?.parse().ok()?,
        link: fields.get("l")?.clone(),
        id: fields.get("i")?.clone(),
        body: fields.get("b")?.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_job_reads_back() {
        let job = Retry {
            hook: 3,
            first_failed_ms: 1_800_000_000_000,
            attempts: 4,
            event: Event::new(
                Kind::LinkCreated,
                9,
                "abc".into(),
                Utc::now(),
                serde_json::json!({"code": "abc"}),
            ),
        };
        assert_eq!(Retry::from_json(&job.to_json()), Some(job.clone()));
        assert!(job.member().starts_with("3:evt_"));
        assert_eq!(Retry::from_json("{}"), None);
    }
}
