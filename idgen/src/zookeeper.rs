//! How every snowlink session reaches ZooKeeper (the lease here, the shortener's cleanup election): one
//! connector, with our digest identity when `ZOOKEEPER_AUTH` is set, and the ACL every node we create gets.
//!
//! With credentials, nodes get `auth` ALL (ZooKeeper's "whoever authenticated as the creator did"), so only
//! sessions holding the same `user:password` can read, write or delete them, and no world READ: nothing of ours
//! reads without the credentials, and worker owners (`host:pid`) and clock marks are nobody else's business
//! (an operator uses `addauth digest user:password` in zkCli). All snowlink services of a deployment share one
//! identity, because the parents they create (`/snowlink`) must admit each other's children. Without
//! credentials nodes stay world-writable, as before: fine on a ZooKeeper only snowlink can reach, and what an
//! ensemble without authentication offers anyway.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use zookeeper_client as zk;

/// A digest identity, `user:password`.
#[derive(Debug, Clone)]
pub struct ZooKeeperAuth(SecretString);

/// Why `ZOOKEEPER_AUTH` was refused.
#[derive(Debug, thiserror::Error)]
#[error("--zookeeper-auth (ZOOKEEPER_AUTH) must be `user:password` with a non-empty user")]
pub struct BadZooKeeperAuth;

impl ZooKeeperAuth {
    /// Checks the `user:password` shape (the digest scheme accepts any bytes, so a typo would otherwise
    /// silently become another identity, locked out of our own nodes).
    ///
    /// # Errors
    /// No `:`, or nothing before it.
    pub fn new(credentials: SecretString) -> Result<Self, BadZooKeeperAuth> {
        match credentials.expose_secret().split_once(':') {
            Some((user, _)) if !user.is_empty() => Ok(Self(credentials)),
            _ => Err(BadZooKeeperAuth),
        }
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ZooKeeperOptions {
    /// Connect string, optionally with a chroot (`host:port,host:port/chroot`).
    pub connect: String,
    /// Session timeout asked for.
    pub session_timeout: Duration,
    /// Our identity; `None` keeps nodes world-writable.
    pub auth: Option<ZooKeeperAuth>,
}

impl ZooKeeperOptions {
    /// A connector for a new session; the client re-sends the credentials whenever it reconnects.
    pub fn connector(&self) -> zk::Connector {
        let connector = zk::Client::connector().with_session_timeout(self.session_timeout);
        match &self.auth {
            Some(auth) => connector.with_auth("digest", auth.0.expose_secret().as_bytes()),
            None => connector,
        }
    }

    /// The ACL of every node we create.
    pub fn acls(&self) -> zk::Acls<'static> {
        if self.auth.is_some() {
            zk::Acls::creator_all()
        } else {
            zk::Acls::anyone_all()
        }
    }
}

/// An error a bounded ZooKeeper call can end in: ZooKeeper's own, or no answer in time.
pub(crate) trait CallError: From<zk::Error> {
    /// No answer within `timeout`.
    fn timed_out(timeout: Duration) -> Self;
}

/// Bounds a ZooKeeper call: a call without a bound hangs for as long as the server is silent.
pub(crate) async fn bounded<T, E: CallError>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, E> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| E::timed_out(timeout))?
        .map_err(E::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_need_a_user_and_a_colon() {
        assert!(ZooKeeperAuth::new("snowlink:s3cret".into()).is_ok());
        assert!(ZooKeeperAuth::new("snowlink:".into()).is_ok());
        assert!(ZooKeeperAuth::new("snowlink".into()).is_err());
        assert!(ZooKeeperAuth::new(":s3cret".into()).is_err());
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let options = ZooKeeperOptions {
            connect: "127.0.0.1:2181".into(),
            session_timeout: Duration::from_secs(6),
            auth: ZooKeeperAuth::new("snowlink:s3cret".into()).ok(),
        };
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
