//! A TCP proxy a test puts between a service and a real dependency, to take the dependency away and give it
//! back without touching the shared server: [`ProxyMode::Refuse`] cuts every connection and drops new ones (the
//! dependency is down), [`ProxyMode::Stall`] keeps connections open but forwards nothing (it hangs, or the
//! network is partitioned), and going back to [`ProxyMode::Forward`] resumes them without losing a byte.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
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

async fn relay(client: TcpStream, upstream: String, mut mode: watch::Receiver<ProxyMode>) {
    // A connection made while stalled reaches the server only once forwarding resumes, as through a partitioned
    // network. Connecting at once left a PostgreSQL backend waiting for its startup packet, which holds up every
    // DROP DATABASE (a barrier all backends must pass) until authentication_timeout, 60 s.
    match mode.wait_for(|mode| *mode != ProxyMode::Stall).await {
        Ok(now) if *now == ProxyMode::Forward => {}
        _ => return,
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, mode.clone()) => {}
        () = pump(server_read, client_write, mode) => {}
    }
}

/// Copies one direction. Bytes read while stalled are held, not lost, and written once forwarding resumes, so
/// a stalled connection that is given back carries on as if the network had only been slow.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            },
            refused = mode.wait_for(|mode| *mode == ProxyMode::Refuse) => {
                let _ = refused;
                return;
            }
        };
        match mode.wait_for(|mode| *mode != ProxyMode::Stall).await {
            Ok(now) if *now == ProxyMode::Forward => {}
            _ => return,
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
