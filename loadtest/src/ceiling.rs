//! `loadtest ceiling`: the machine's ceiling for a redirect answer — an actix-web server with the redirect
//! service's settings that answers every request with the same 302 and does nothing else. Redirect figures
//! are quoted as a fraction of it, measured in the same run.

use actix_web::{http::header, web, App, HttpResponse, HttpServer};

/// Serves until Ctrl-C/SIGTERM.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(listen: &str, workers: usize) -> std::io::Result<()> {
    let mut server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Found()
                .insert_header((header::LOCATION, "https://example.com/"))
                .insert_header((header::CACHE_CONTROL, "private, max-age=0"))
                .finish()
        }))
    });
    if workers > 0 {
        server = server.workers(workers);
    }
    server.bind(listen)?.run().await
}
