//! idgen's tests against the real ZooKeeper started by `make test`, each in its own chroot: leases and worker
//! IDs, fencing when ZooKeeper goes silent or expires the session, the clock mark, clock steps, and the HTTP
//! service.

mod clock;
mod expiry;
mod helpers;
mod http;
mod marks;
mod ownership;
mod workers;
