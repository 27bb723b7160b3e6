//! Password tries under attack: bounded per link whoever tries and per IPv6 /48, a flood on one link leaves other
//! links their turn to be checked, and a form sent too slowly is cut off.

use std::time::Duration;

use reqwest::{header, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{spawn_pair, TestPair};

/// A redirect that believes the test's `X-Forwarded-For` (the test is the proxy), with `configure` applied.
async fn behind_a_proxy(
    pair: &TestPair,
    configure: impl FnOnce(&mut redirect::config::RedirectArgs),
) -> String {
    let mut args = pair.redirect_args();
    args.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a CIDR block")];
    configure(&mut args);
    pair.spawn_redirect(args).await
}

async fn try_password(
    pair: &TestPair,
    base: &str,
    code: &str,
    client: &str,
    password: &str,
) -> reqwest::Response {
    pair.client
        .post(format!("{base}/{code}"))
        .header("X-Forwarded-For", client)
        .form(&[("password", password)])
        .send()
        .await
        .expect("the redirect answers")
}

async fn protected(pair: &TestPair, name: &str) -> String {
    pair.shorten(json!({"long_url": format!("https://example.com/{name}"), "password": "right"}))
        .await
}

#[tokio::test]
async fn a_links_tries_are_bounded_whoever_makes_them() {
    let pair = spawn_pair().await;
    let redirect = behind_a_proxy(&pair, |args| {
        args.password_tries_per_link_per_minute = 10;
    })
    .await;
    let code = protected(&pair, "guarded").await;
    let other = protected(&pair, "other").await;

    for n in 1..=10 {
        let client = format!("203.0.113.{n}");
        let answer = try_password(&pair, &redirect, &code, &client, "wrong").await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{client}");
    }

    let fresh = try_password(&pair, &redirect, &code, "198.51.100.1", "right").await;
    assert_eq!(
        fresh.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a client that never tried waits too"
    );
    assert!(fresh.headers().contains_key(header::RETRY_AFTER));
    let elsewhere = try_password(&pair, &redirect, &other, "198.51.100.1", "right").await;
    assert_eq!(
        elsewhere.status(),
        StatusCode::SEE_OTHER,
        "another link's tries are its own"
    );
}

#[tokio::test]
async fn the_64s_of_one_ipv6_48_share_a_budget_of_tries() {
    let pair = spawn_pair().await;
    let redirect = behind_a_proxy(&pair, |args| {
        args.password_tries_per_minute = 5;
        args.password_tries_per_link_per_minute = 0;
    })
    .await;
    let code = protected(&pair, "ipv6").await;

    // Four clients' budgets from one /48, each try from a /64 of its own.
    for n in 0..20 {
        let client = format!("2001:db8:1:{n:x}::1");
        let answer = try_password(&pair, &redirect, &code, &client, "wrong").await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{client}");
    }

    let same_site = try_password(&pair, &redirect, &code, "2001:db8:1:ff::1", "wrong").await;
    assert_eq!(same_site.status(), StatusCode::TOO_MANY_REQUESTS);
    let other_site = try_password(&pair, &redirect, &code, "2001:db8:2::1", "wrong").await;
    assert_eq!(other_site.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_flood_of_tries_on_one_link_leaves_another_link_its_turn() {
    let pair = spawn_pair().await;
    let redirect = behind_a_proxy(&pair, |args| {
        args.password_tries_per_minute = 0;
        args.password_tries_per_link_per_minute = 0;
    })
    .await;
    let flooded = protected(&pair, "flooded").await;
    let quiet = protected(&pair, "quiet").await;

    // 150 clients trying the flooded link over and over, until told to stop.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (refused, mut refusals) = tokio::sync::mpsc::unbounded_channel();
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..150 {
        let (client, redirect, flooded) = (pair.client.clone(), redirect.clone(), flooded.clone());
        let (stopped, refused) = (stopped.clone(), refused.clone());
        flood.spawn(async move {
            while !*stopped.borrow() {
                let answer = client
                    .post(format!("{redirect}/{flooded}"))
                    .header("X-Forwarded-For", format!("203.0.113.{n}"))
                    .form(&[("password", "wrong")])
                    .send()
                    .await
                    .expect("the flood is answered");
                let status = answer.status();
                assert!(
                    [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
                    "{status}"
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    let _ignored = refused.send(());
                }
            }
        });
    }
    // The flood fills every turn it may have: its own tries wait past their second.
    refusals
        .recv()
        .await
        .expect("a try of the flood is refused");

    let unlocked = try_password(&pair, &redirect, &quiet, "198.51.100.1", "right").await;

    stop.send_replace(true);
    while let Some(joined) = flood.join_next().await {
        joined.expect("a flooding client");
    }
    assert_eq!(unlocked.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_form_sent_too_slowly_is_a_408() {
    let pair = spawn_pair().await;
    let code = protected(&pair, "slow").await;
    let address = pair
        .redirect
        .strip_prefix("http://")
        .expect("an http address");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connected");

    // Half a body, then nothing more.
    let request = format!(
        "POST /{code} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\npassword=ri"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
        .await
        .expect("an answer while the body is still owed")
        .expect("read");

    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
