//! `GET /v1/urls/{code}/qr`: SVG by default, PNG of exactly the requested size holding the short URL's code,
//! size and format checked, scoped to the caller like every other call.

use qrcode::QrCode;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_default_is_an_svg_of_256_pixels_that_browsers_may_keep() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/qr"}))
        .await;

    let response = app
        .call(Method::GET, &format!("/v1/urls/{code}/qr"), &app.api_key)
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let cache = response.headers()["cache-control"].to_str().expect("ascii");
    assert!(
        cache.contains("max-age=") && cache.contains("private"),
        "{cache}"
    );
    let svg = response.text().await.expect("text");
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(svg.contains(r#"width="256" height="256""#), "{svg}");
    assert!(svg.contains("<path"), "dark modules are drawn");
}

#[tokio::test]
async fn a_png_has_the_requested_size_and_the_modules_of_the_short_url() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/png"}))
        .await;

    let response = app
        .call(
            Method::GET,
            &format!("/v1/urls/{code}/qr?format=png&size=300"),
            &app.api_key,
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let bytes = response.bytes().await.expect("body");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
    // One bit per pixel on the wire; one byte per pixel to sample.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!((frame.width, frame.height), (300, 300));
    assert_eq!(frame.color_type, png::ColorType::Grayscale);

    // Sample the centre of every module and compare with the code of the short URL, quiet zone included.
    let expected = QrCode::new(format!("http://sho.rt.test/{code}")).expect("a code");
    let inner = expected.width();
    let modules = inner + 8;
    let scale = 300 / modules;
    let offset = (300 - modules * scale) / 2;
    let colors = expected.to_colors();
    for y in 0..modules {
        for x in 0..modules {
            let dark_expected = (4..inner + 4).contains(&x)
                && (4..inner + 4).contains(&y)
                && colors[(y - 4) * inner + (x - 4)] == qrcode::Color::Dark;
            let (px, py) = (
                offset + x * scale + scale / 2,
                offset + y * scale + scale / 2,
            );
            let dark = pixels[py * 300 + px] < 128;
            assert_eq!(dark, dark_expected, "module ({x}, {y})");
        }
    }
}

#[tokio::test]
async fn sizes_and_formats_out_of_bounds_are_422() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/bounds"}))
        .await;
    for (query, expected) in [
        ("size=63", "invalid_size"),
        ("size=1025", "invalid_size"),
        ("format=png&size=0", "invalid_size"),
        ("format=gif", "invalid_format"),
        ("size=big", "invalid_query"),
        ("size=-5", "invalid_query"),
        ("colour=red", "invalid_query"),
    ] {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/urls/{code}/qr?{query}"),
                &app.api_key,
            )
            .await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(error_code(response).await, expected, "{query}");
    }
    for size in [64, 1024] {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/urls/{code}/qr?format=png&size={size}"),
                &app.api_key,
            )
            .await;
        assert_eq!(response.status(), 200, "size {size} is within bounds");
    }
}

#[tokio::test]
async fn another_keys_link_a_deleted_link_and_no_key_get_no_qr_code() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/private"}))
        .await;
    let other = app.other_key().await;

    let theirs = app
        .call(Method::GET, &format!("/v1/urls/{code}/qr"), &other)
        .await;
    assert_eq!(theirs.status(), 404);
    let anonymous = app
        .client
        .get(format!("{}/v1/urls/{code}/qr", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), 401);
    app.call(Method::DELETE, &format!("/v1/urls/{code}"), &app.api_key)
        .await;
    let deleted = app
        .call(Method::GET, &format!("/v1/urls/{code}/qr"), &app.api_key)
        .await;
    assert_eq!(deleted.status(), 404);
}

#[tokio::test]
async fn with_anonymous_creation_an_anonymous_link_has_a_qr_code_for_anyone_but_an_owned_one_not() {
    let app = spawn_app_with(|args| args.allow_anonymous = true).await;
    let anonymous_link = app
        .client
        .post(format!("{}/v1/urls", app.address))
        .json(&json!({"long_url": "https://example.com/demo"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous_link.status(), 201);
    let body: serde_json::Value = anonymous_link.json().await.expect("json");
    let anonymous_code = body["code"].as_str().expect("code");
    let owned_code = app
        .shorten(json!({"long_url": "https://example.com/owned"}))
        .await;

    let qr = |code: String| {
        app.client
            .get(format!("{}/v1/urls/{code}/qr", app.address))
            .send()
    };
    assert_eq!(
        qr(anonymous_code.to_owned())
            .await
            .expect("answer")
            .status(),
        200
    );
    assert_eq!(qr(owned_code).await.expect("answer").status(), 404);
}
