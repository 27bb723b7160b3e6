//! idgen's tests against the real ZooKeeper started by `make test`, each in its own chroot: leases and worker
//! IDs, fencing when ZooKeeper goes silent or expires the session, the clock mark, clock steps, the code counter
//! and its blocks, and the HTTP service.

mod blocks_http;
mod clock;
mod code_blocks;
mod counter;
mod expiry;
mod helpers;
mod http;
mod marks;
mod ownership;
mod workers;
