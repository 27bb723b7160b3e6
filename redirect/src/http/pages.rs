//! The redirect's two HTML pages besides errors: the password form in front of a protected link, and the preview
//! (`/{code}+`) that names where a short link goes without going there. Both are small, self-contained (no
//! script, no external resources), never cached, and never framed by another site (a framed password form is a
//! clickjacking target).

use actix_web::{
    http::{header, StatusCode},
    HttpResponse,
};

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;\
             padding:0 1rem;line-height:1.5}}code{{word-break:break-all}}</style><body>{body}</body></html>\n"
        ))
}

/// Why the password form is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// First visit: 200.
    Ask,
    /// The password sent was wrong: 401.
    Wrong,
}

/// The form asking for the password of link `code`. It posts back to the link's own path.
pub fn password_form(code: &str, prompt: Prompt) -> HttpResponse {
    let (status, note) = match prompt {
        Prompt::Ask => (StatusCode::OK, ""),
        Prompt::Wrong => (
            StatusCode::UNAUTHORIZED,
            "<p role=\"alert\"><strong>That password is not right.</strong> Try again.</p>",
        ),
    };
    let code = escape(code);
    page(
        status,
        "Password required",
        &format!(
            "<h1>This link is password-protected</h1>{note}\
             <form method=\"post\" action=\"/{code}\">\
             <label for=\"password\">Password</label> \
             <input type=\"password\" id=\"password\" name=\"password\" required autofocus \
             autocomplete=\"current-password\" maxlength=\"128\"> \
             <button type=\"submit\">Continue</button></form>"
        ),
    )
}

/// The preview of link `code`: where it goes, or, for a protected link, only that it is protected (the password
/// guards the destination too).
pub fn preview(code: &str, long_url: &str, protected: bool) -> HttpResponse {
    let code = escape(code);
    let body = if protected {
        format!(
            "<h1>Preview of /{code}</h1><p>This short link is password-protected: its destination is shown only \
             after the password is given.</p><p><a href=\"/{code}\">Open it</a></p>"
        )
    } else {
        let url = escape(long_url);
        format!(
            "<h1>Preview of /{code}</h1><p>This short link goes to:</p><p><code>{url}</code></p>\
             <p><a href=\"/{code}\" rel=\"noreferrer\">Go there</a></p>"
        )
    };
    page(StatusCode::OK, "Link preview", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
