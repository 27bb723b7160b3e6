//! The open-loop engine against a deliberately slow local server: it keeps the asked rate when the server can
//! follow, and when it cannot, the corrected percentiles carry the queueing delay that uncorrected ones hide.

use std::{net::SocketAddr, time::Duration};

use loadtest::{
    engine::{self, Load},
    workload::{Draw, Redirects, Target},
    zipf::Zipf,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A server that answers every request with a 302 after `delay`, one request at a time per connection.
async fn slow_server(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let mut chunk = [0u8; 1024];
                    let Ok(read) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        tokio::time::sleep(delay).await;
                        let answer = b"HTTP/1.1 302 Found\r\nlocation: https://example.com/\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    address
}

async fn run(address: SocketAddr, rate: f64, connections: usize) -> engine::Measured {
    let target = Target {
        host: address.to_string(),
        base_path: String::new(),
    };
    let requests = Redirects::prepare(&target, &["abc".to_owned()], &[]);
    let draw = Draw::Zipf(std::sync::Arc::new(Zipf::new(1, 0.0)));
    let load = Load {
        address,
        rate: Some(rate),
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(200),
        connections,
        timeout: Duration::from_secs(10),
    };
    engine::run(&load, |k| {
        Redirects::new(std::sync::Arc::clone(&requests), draw.clone(), k)
    })
    .await
}

#[tokio::test]
async fn the_asked_rate_is_kept_when_the_server_can_follow() {
    let address = slow_server(Duration::from_millis(10)).await;

    // 8 connections at 25 req/s each: 40 ms between sends, 10 ms per answer.
    let measured = run(address, 200.0, 8).await;

    let achieved = measured.ok as f64 / measured.elapsed.as_secs_f64();
    assert!(measured.errors.is_empty(), "{:?}", measured.errors);
    assert!(
        (170.0..=215.0).contains(&achieved),
        "achieved {achieved:.0} req/s for 200 asked"
    );
}

#[tokio::test]
async fn corrected_percentiles_include_the_queueing_that_uncorrected_ones_hide() {
    let address = slow_server(Duration::from_millis(10)).await;

    // One connection asked for 200 req/s can do at most 100: requests queue behind each other.
    let measured = run(address, 200.0, 1).await;

    let corrected = measured.corrected.value_at_percentile(90.0);
    let uncorrected = measured.uncorrected.value_at_percentile(90.0);
    assert!(
        uncorrected < 100_000,
        "each answer alone takes ~10 ms: {uncorrected} µs"
    );
    assert!(
        corrected > 10 * uncorrected,
        "queueing must show: corrected p90 {corrected} µs vs uncorrected {uncorrected} µs"
    );
}
