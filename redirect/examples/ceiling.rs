//! The throughput ceiling for the redirect on this machine: a minimal actix-web server that answers every
//! request with the same 302 (same headers as a real redirect), with nothing behind it. The redirect's
//! requests per second divided by this server's, measured in the same run, says how much the read path costs.
//!
//! `cargo run --release -p redirect --example ceiling -- 127.0.0.1:18081 2` (address, HTTP workers).

use actix_web::{
    http::header::{self, HeaderValue},
    web, App, HttpResponse, HttpServer,
};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let workers = args
        .next()
        .and_then(|workers| workers.parse().ok())
        .unwrap_or(2);
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            let mut response = HttpResponse::Found().finish();
            let headers = response.headers_mut();
            headers.insert(
                header::LOCATION,
                HeaderValue::from_static("https://example.com/landing"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=0"),
            );
            response
        }))
    })
    .workers(workers)
    .bind(address)?
    .run()
    .await
}
