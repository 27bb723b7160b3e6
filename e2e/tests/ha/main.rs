//! Faults on the high-availability topology (`make run-ha`, DESIGN.md's Contract), under traffic, against the
//! real engines: built only with `--features ha` (`cargo test -p e2e --features ha --test ha`), since each test
//! kills a node of a cluster that every other test would share.

mod redis;
mod redis_trickle;
