//! A TCP proxy a test puts between a service and a real dependency, to take the dependency away and give it
//! back without touching the shared server: [`ProxyMode::Refuse`] cuts every connection and drops new ones (the
//! dependency is down), [`ProxyMode::Stall`] keeps connections open but forwards nothing (it hangs).

use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass bytes both ways.
    Forward,
    /// Accept, but pass nothing: calls hang until the caller's timeout.
    Stall,
    /// Close every connection and each new one at once.
    Refuse,
}

/// A running proxy; it stops when dropped.
pub struct TcpProxy {
    address: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding from a free loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("bound address");
        let (mode, watching) = watch::channel(ProxyMode::Forward);
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), watching.clone()));
            }
        });
        Self {
            address,
            mode,
            task,
        }
    }

    /// The proxy's `host:port`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Switches what the proxy does, for existing and new connections.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.set(ProxyMode::Refuse);
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<ProxyMode>) {
    let mut server: Option<TcpStream> = None;
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Refuse => return,
            ProxyMode::Stall => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            ProxyMode::Forward => {
                if server.is_none() {
                    server = TcpStream::connect(&upstream).await.ok();
                }
                let Some(upstream) = server.as_mut() else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, upstream) => return,
                    changed = mode.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}
