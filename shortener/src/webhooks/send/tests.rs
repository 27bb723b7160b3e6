//! Deliveries to a real receiver on 127.0.0.1: a few lines of HTTP/1.1 over a tokio listener, answering every
//! request with one canned status and recording what it got.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use super::*;

const SECRET: &str = "whsec_0123";
const BODY: &str = r#"{"id":"evt_1","type":"click","created_at":"2026-12-07T00:00:00Z","data":{}}"#;

/// A request as the receiver read it: its head (lower-cased) and body.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    }
}

struct Receiver {
    address: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// A receiver answering every request with `status_line` (e.g. `200 OK`) and `headers` (each ending in
    /// CRLF); `None`: it reads requests and never answers.
    async fn start(status_line: Option<&'static str>, headers: &str) -> Self {
        let headers: Arc<str> = headers.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let got = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&got);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (recorded, headers) = (Arc::clone(&recorded), Arc::clone(&headers));
                tokio::spawn(answer(stream, status_line, headers, recorded));
            }
        });
        Self { address, got }
    }

    fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/hook", self.address.port())
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("not poisoned").clone()
    }
}

async fn answer(
    mut stream: TcpStream,
    status_line: Option<&'static str>,
    headers: Arc<str>,
    recorded: Arc<Mutex<Vec<Received>>>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
    let body = buffer[head_end..head_end + length].to_vec();
    recorded
        .lock()
        .expect("not poisoned")
        .push(Received { head, body });
    let Some(status_line) = status_line else {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    };
    let response = format!(
        "HTTP/1.1 {status_line}\r\n{headers}content-length: 2\r\nconnection: close\r\n\r\nok"
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

fn sender(allow_private: bool) -> Sender {
    Sender::new(allow_private, Duration::from_secs(5)).expect("sender")
}

#[tokio::test]
async fn a_delivery_carries_the_event_id_and_a_signature_that_verifies() {
    let receiver = Receiver::start(Some("200 OK"), "").await;

    let sent = sender(true)
        .send(
            &receiver.url("127.0.0.1"),
            SECRET,
            "evt_1",
            Bytes::from(BODY),
        )
        .await;

    assert_eq!(sent, Ok(()));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert!(
        request.head.starts_with("post /hook http/1.1"),
        "{}",
        request.head
    );
    assert_eq!(request.body, BODY.as_bytes());
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        request.header("snowlink-event-id").as_deref(),
        Some("evt_1")
    );
    assert_eq!(request.header("user-agent").as_deref(), Some(USER_AGENT));
    let signed = request.header("snowlink-signature").expect("signed");
    let now = chrono::Utc::now().timestamp();
    assert!(signature::verify(
        SECRET,
        &signed,
        &request.body,
        now,
        Duration::from_secs(60)
    ));
}

#[tokio::test]
async fn a_name_is_delivered_to_when_private_addresses_are_allowed() {
    let receiver = Receiver::start(Some("204 No Content"), "").await;

    let sent = sender(true)
        .send(
            &receiver.url("localhost"),
            SECRET,
            "evt_2",
            Bytes::from(BODY),
        )
        .await;

    assert_eq!(sent, Ok(()));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_500_is_a_failure_with_its_status() {
    let receiver = Receiver::start(Some("500 Internal Server Error"), "").await;

    let sent = sender(true)
        .send(
            &receiver.url("127.0.0.1"),
            SECRET,
            "evt_3",
            Bytes::from(BODY),
        )
        .await;

    assert_eq!(sent, Err(SendError::Status(500)));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let target = Receiver::start(Some("200 OK"), "").await;
    let location = format!("location: {}\r\n", target.url("127.0.0.1"));
    let receiver = Receiver::start(Some("307 Temporary Redirect"), &location).await;

    let sent = sender(true)
        .send(
            &receiver.url("127.0.0.1"),
            SECRET,
            "evt_4",
            Bytes::from(BODY),
        )
        .await;

    assert_eq!(sent, Err(SendError::Status(307)));
    assert_eq!(receiver.received().len(), 1);
    assert!(target.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn without_the_flag_a_local_receiver_is_forbidden_and_gets_nothing() {
    let receiver = Receiver::start(Some("200 OK"), "").await;
    let sender = sender(false);

    for host in ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"] {
        let sent = sender
            .send(&receiver.url(host), SECRET, "evt_5", Bytes::from(BODY))
            .await;

        assert_eq!(sent, Err(SendError::Forbidden), "{host}");
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_closed_port_and_a_receiver_that_never_answers_are_transport_failures() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address")
    };
    let silent = Receiver::start(None, "").await;
    let sender = Sender::new(true, Duration::from_millis(300)).expect("sender");

    let refused = sender
        .send(
            &format!("http://{closed}/"),
            SECRET,
            "evt_6",
            Bytes::from(BODY),
        )
        .await;
    let started = tokio::time::Instant::now();
    let timed_out = sender
        .send(&silent.url("127.0.0.1"), SECRET, "evt_7", Bytes::from(BODY))
        .await;

    assert!(
        matches!(refused, Err(SendError::Transport(_))),
        "{refused:?}"
    );
    assert!(
        matches!(timed_out, Err(SendError::Transport(_))),
        "{timed_out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}
