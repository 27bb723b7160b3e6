//! The redirect's tests, end to end: links created through a real shortener, followed through a real redirect,
//! against the PostgreSQL primary and replica, Redis and ZooKeeper started by `make test`.

mod clicks;
mod degradation;
mod domains;
mod follow;
mod forged;
mod helpers;
mod hits;
mod invalidation;
mod limits;
mod manage;
mod misses;
mod rollout;
mod routing;
mod takedown;
mod tiers;
mod unlock;
mod webhooks;
