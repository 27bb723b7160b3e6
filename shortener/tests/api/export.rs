//! The bounds on `GET /v1/urls/export.csv`: exports per key and in all, a client that stops reading, and pages
//! bounded in bytes. The exports are of thousands of 2 KB URLs, more than the sockets between a client that does
//! not read and the server can hold, so such an export stays running until the server gives up on it. Requests go
//! over raw sockets with a small receive buffer: the test decides what the client reads, and sees the server's
//! chunks as they were sent.

use std::time::Duration;

use reqwest::Method;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};

use crate::helpers::{error_code, spawn_app_with, TestApp};

/// Links seeded for the test's key: 5,000 of ~2 KB, ~10 MB of CSV.
const LINKS: i64 = 5_000;

/// `LINKS` links of the test's key with ~2 KB URLs, in one statement.
async fn seed_long_links(app: &TestApp) {
    app.sql(
        "INSERT INTO links (id, code, long_url, url_hash, owner_id)
         SELECT 1000000 + n, 'x' || n, 'https://example.com/' || repeat('a', 1950) || '/' || n,
                sha256(n::text::bytea), (SELECT id FROM api_keys WHERE name = 'tests')
         FROM generate_series(1, $1::bigint) AS n",
        &[&LINKS],
    )
    .await;
}

/// An export requested over a socket that reads only what the test asks for.
struct RawExport {
    stream: TcpStream,
    /// What was read so far: the head, and whatever of the body came with it.
    read: Vec<u8>,
    status: u16,
}

impl RawExport {
    /// Sends the request and reads until the response head is in; the body is left unread.
    async fn open(app: &TestApp, key: &str) -> Self {
        let address = app
            .address
            .trim_start_matches("http://")
            .parse()
            .expect("an address");
        let socket = TcpSocket::new_v4().expect("a socket");
        // Small, so the client's side holds little of an export it does not read.
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut stream = socket.connect(address).await.expect("connects");
        let request = format!(
            "GET /v1/urls/export.csv HTTP/1.1\r\nHost: sho.rt.test\r\nAuthorization: Bearer {key}\r\n\
             Connection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        let mut read = Vec::new();
        let mut buffer = [0_u8; 1024];
        while !read.windows(4).any(|window| window == b"\r\n\r\n") {
            let got = stream.read(&mut buffer).await.expect("the response head");
            assert!(got > 0, "closed before the response head");
            read.extend_from_slice(&buffer[..got]);
        }
        let status = std::str::from_utf8(&read[9..12])
            .expect("ascii")
            .parse()
            .expect("a status");
        Self {
            stream,
            read,
            status,
        }
    }

    /// Reads the rest until the server closes the connection (or breaks it); returns the body as sent, in
    /// chunked encoding.
    async fn read_to_end(mut self) -> Vec<u8> {
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            match self.stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(got) => self.read.extend_from_slice(&buffer[..got]),
            }
        }
        let head_end = self
            .read
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a head")
            + 4;
        self.read.split_off(head_end)
    }
}

/// The sizes of the chunks of a chunked body, and whether it ended with the final (empty) chunk.
fn chunks(mut body: &[u8]) -> (Vec<usize>, bool) {
    let mut sizes = Vec::new();
    while let Some(line_end) = body.windows(2).position(|window| window == b"\r\n") {
        let size = usize::from_str_radix(
            std::str::from_utf8(&body[..line_end]).expect("a chunk size"),
            16,
        )
        .expect("hex");
        if size == 0 {
            return (sizes, true);
        }
        let next = line_end + 2 + size + 2;
        if body.len() < next {
            break;
        }
        sizes.push(size);
        body = &body[next..];
    }
    (sizes, false)
}

async fn export(app: &TestApp, key: &str) -> reqwest::Response {
    app.call(Method::GET, "/v1/urls/export.csv", key).await
}

#[tokio::test]
async fn a_third_export_of_one_key_is_a_429_while_two_are_held_open_by_a_client_that_does_not_read()
{
    let app = spawn_app_with(|_| {}).await;
    seed_long_links(&app).await;
    let first = RawExport::open(&app, &app.api_key).await;
    let second = RawExport::open(&app, &app.api_key).await;
    assert_eq!((first.status, second.status), (200, 200));

    let third = export(&app, &app.api_key).await;
    let other_key = export(&app, &app.other_key().await).await;

    assert_eq!(third.status(), 429);
    let retry_after: u64 = third.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    assert_eq!(error_code(third).await, "rate_limited");
    assert_eq!(other_key.status(), 200, "another key is not held up");
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_export_and_its_slot_after_the_idle_timeout() {
    let app = spawn_app_with(|args| {
        args.exports.export_idle_timeout = Duration::from_secs(2);
    })
    .await;
    seed_long_links(&app).await;
    let _first = RawExport::open(&app, &app.api_key).await;
    let _second = RawExport::open(&app, &app.api_key).await;
    assert_eq!(export(&app, &app.api_key).await.status(), 429);

    testkit::eventually(
        Duration::from_secs(30),
        "an export of the key is let in again",
        || async { export(&app, &app.api_key).await.status() == 200 },
    )
    .await;
}

#[tokio::test]
async fn the_connection_of_a_client_that_stopped_reading_is_dropped_by_the_server() {
    let app = spawn_app_with(|args| {
        args.exports.export_idle_timeout = Duration::from_secs(1);
    })
    .await;
    seed_long_links(&app).await;

    // Never read again: the server's send buffer fills and the client's window stays shut.
    let _stalled = RawExport::open(&app, &app.api_key).await;
    assert_eq!(app.metric("shortener_exports_open").await, 1.0);

    // The response is dropped only with its connection: the kernel gave up on the client (TCP_USER_TIMEOUT).
    testkit::eventually(
        Duration::from_secs(30),
        "the stalled export's connection is dropped",
        || async { app.metric("shortener_exports_open").await == 0.0 },
    )
    .await;
    assert_eq!(app.metric("shortener_exports_running").await, 0.0);
}

#[tokio::test]
async fn an_export_past_the_process_wide_bound_is_a_503_at_once() {
    let app = spawn_app_with(|args| {
        args.exports.exports_max = 2;
    })
    .await;
    seed_long_links(&app).await;
    let first = RawExport::open(&app, &app.api_key).await;
    let second = RawExport::open(&app, &app.api_key).await;
    assert_eq!((first.status, second.status), (200, 200));

    let other_key = export(&app, &app.other_key().await).await;

    assert_eq!(other_key.status(), 503);
    assert!(other_key.headers().contains_key("retry-after"));
    assert_eq!(error_code(other_key).await, "unavailable");
}

#[tokio::test]
async fn an_export_of_long_urls_reads_pages_bounded_in_bytes() {
    let app = spawn_app_with(|_| {}).await;
    seed_long_links(&app).await;

    let body = RawExport::open(&app, &app.api_key)
        .await
        .read_to_end()
        .await;

    let (sizes, complete) = chunks(&body);
    assert!(complete, "the export ended with its final chunk");
    let largest = sizes.iter().copied().max().unwrap_or(0);
    // A page of 1,000 such links would be a 2 MB chunk; the page budget is 256 KiB of links.
    assert!(largest < 400 * 1024, "the largest chunk is {largest} bytes");
    let csv: usize = sizes.iter().sum();
    assert!(csv > 9_000_000, "all {LINKS} links: {csv} bytes");
}
