//! A minimal HTTP/1.1 keep-alive client: one request at a time per connection, requests prepared as bytes in
//! advance, only the status read from the answer. Small and predictable on purpose: the load generator shares
//! the machine with the servers it measures, so it must spend as little CPU per request as possible.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Why a request produced no status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be opened.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection broke or the answer was not HTTP/1.1 we understand.
    Io,
}

impl Failure {
    /// The error kind in reports.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Io => "io",
        }
    }
}

/// One keep-alive connection.
pub struct Connection {
    address: SocketAddr,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    timeout: Duration,
}

impl Connection {
    /// A connection to `address`, opened lazily by the first request.
    pub fn new(address: SocketAddr, timeout: Duration) -> Self {
        Self {
            address,
            stream: None,
            buffer: Vec::with_capacity(4096),
            timeout,
        }
    }

    /// Sends `request` (a complete HTTP/1.1 request) and returns the answer's status. On failure the connection
    /// is dropped and the next request opens a new one.
    pub async fn send(&mut self, request: &[u8]) -> Result<u16, Failure> {
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(Ok((status, keep_alive))) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(status)
            }
            Ok(Err(failure)) => {
                self.stream = None;
                Err(failure)
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, bool), Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.address)
                .await
                .map_err(|_| Failure::Connect)?;
            stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().ok_or(Failure::Io)?;
        stream.write_all(request).await.map_err(|_| Failure::Io)?;
        self.buffer.clear();
        loop {
            if let Some(answer) = parse(&self.buffer)? {
                return Ok(answer);
            }
            self.buffer.reserve(4096);
            let read = stream
                .read_buf(&mut self.buffer)
                .await
                .map_err(|_| Failure::Io)?;
            if read == 0 {
                return Err(Failure::Io);
            }
        }
    }
}

/// The status and keep-alive of a complete answer in `buffer`; `None` while more bytes are needed.
fn parse(buffer: &[u8]) -> Result<Option<(u16, bool)>, Failure> {
    let Some(head_end) = find(buffer, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| Failure::Io)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(Failure::Io)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(Failure::Io)?;
    let (mut length, mut chunked, mut keep_alive) = (0usize, false, true);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| Failure::Io)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    let body = &buffer[head_end + 4..];
    let complete = if chunked {
        body.ends_with(b"0\r\n\r\n")
    } else {
        body.len() >= length
    };
    Ok(complete.then_some((status, keep_alive)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A request line and headers for `GET path` (no body), with `extra` header lines (`Name: value`, checked by
/// [`header_line`]) after the default ones; a `User-Agent` among them replaces the default one.
pub fn get(host: &str, path: &str, extra: &[String]) -> Vec<u8> {
    let own_agent = extra
        .iter()
        .any(|line| line.to_ascii_lowercase().starts_with("user-agent:"));
    let agent = if own_agent {
        ""
    } else {
        "User-Agent: snowlink-loadtest\r\n"
    };
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{agent}");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// A `--header` value as a header line: `Name: value`, a token name, no line breaks.
///
/// # Errors
/// What is wrong with it.
pub fn header_line(raw: &str) -> Result<String, String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("{raw:?} is not Name: value"))?;
    let token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    if value.bytes().any(|byte| byte == b'\r' || byte == b'\n') {
        return Err("a header value cannot hold a line break".into());
    }
    Ok(format!("{name}: {}", value.trim()))
}

/// A JSON request (`POST`, `PATCH`) with a bearer key.
pub fn json_request(method: &str, host: &str, path: &str, key: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: snowlink-loadtest\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers_follow_the_default_ones_and_may_replace_the_user_agent() {
        let plain = String::from_utf8(get("h", "/c", &[])).expect("ascii");
        assert_eq!(
            plain,
            "GET /c HTTP/1.1\r\nHost: h\r\nUser-Agent: snowlink-loadtest\r\n\r\n"
        );
        let lines = vec![
            header_line("User-Agent: Mozilla/5.0").expect("line"),
            header_line("Referer:https://news.example/").expect("line"),
        ];
        let browser = String::from_utf8(get("h", "/c", &lines)).expect("ascii");
        assert_eq!(
            browser,
            "GET /c HTTP/1.1\r\nHost: h\r\nUser-Agent: Mozilla/5.0\r\nReferer: https://news.example/\r\n\r\n"
        );
        assert!(header_line("no colon").is_err());
        assert!(header_line("Bad Name: x").is_err());
        assert!(header_line("X: a\r\nInjected: b").is_err());
    }

    #[test]
    fn answers_are_complete_only_with_their_whole_body() {
        let head = b"HTTP/1.1 302 Found\r\nlocation: https://e.x/\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(parse(head), Ok(None));
        let mut full = head.to_vec();
        full.extend_from_slice(b"hello");
        assert_eq!(parse(&full), Ok(Some((302, true))));
        assert_eq!(
            parse(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
            Ok(Some((404, false)))
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
            Ok(None)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            Ok(Some((200, true)))
        );
        assert_eq!(parse(b"garbage\r\n\r\n"), Err(Failure::Io));
    }
}
