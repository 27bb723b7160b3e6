//! Faults survived under traffic on the high-availability topology (`SNOWLINK_TOPOLOGY=ha scripts/services.sh
//! up`: a ZooKeeper ensemble, PostgreSQL x3 under Patroni, a Redis Cluster): a node is killed (SIGKILL) or frozen
//! while a trickle of creates, redirects of stored links and ID requests runs against an in-process shortener,
//! redirect and idgen, and the test checks what the clients saw. Every test brings its node back (even when it
//! fails) and shows the cluster whole again. Built only with feature `ha` (`make test-ha`), since each test kills
//! a node of a cluster that every other test would share.
//!
//! # Layout
//! - [`services`]: the ha topology from outside: nodes' roles, killing one by its pid file, bringing it back.
//! - [`stack`]: the shortener, redirect and idgen in this process, on the topology's URLs.
//! - [`trickle`]: the steady load, and every answer it got with its time.
//! - [`postgres`]: the primary killed.
//! - [`zookeeper`]: a ZooKeeper node killed; the code counter leased through a leader kill.
//! - [`redis`] (with its own trickle, [`redis_trickle`], which also checks write-through after each create): a
//!   Redis master killed or frozen.

mod postgres;
mod redis;
mod redis_trickle;
mod services;
mod stack;
mod trickle;
mod zookeeper;
