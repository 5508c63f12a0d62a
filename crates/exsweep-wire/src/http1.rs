//! HTTP/1.1 as WinRM uses it: requests written whole, responses parsed from bytes as they
//! arrive (status line, headers, a body by `Content-Length` or chunked). exsweep speaks
//! HTTP itself because NTLM binds its security context to one TCP connection, which a pooling
//! client cannot promise. Bounded: header section, header count and body size are capped.

use crate::DecodeError;

/// Largest header section accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most headers accepted.
pub const MAX_HEADERS: usize = 100;
/// Largest body accepted (WinRM's MaxEnvelopeSize is far below).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A request, written as bytes.
pub fn encode_request(method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 256);
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order (`WWW-Authenticate` may come more than once).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

/// Parses one response from bytes fed as they arrive.
#[derive(Debug, Default)]
pub struct ResponseParser {
    buf: Vec<u8>,
    /// A body with no length runs until the connection closes ([`ResponseParser::finish`]);
    /// otherwise it is an error (WinRM always sends a length).
    until_close: bool,
}

fn invalid(detail: impl Into<String>) -> DecodeError {
    DecodeError::invalid("HTTP response", detail)
}

impl ResponseParser {
    pub fn new() -> Self {
        ResponseParser::default()
    }

    /// A parser for a server that may end a body by closing the connection (`Connection:
    /// close` on a plain web server).
    pub fn until_close() -> Self {
        ResponseParser {
            until_close: true,
            ..ResponseParser::default()
        }
    }

    /// Adds bytes; returns the response once it is complete, and keeps what follows it.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Response>, DecodeError> {
        self.buf.extend_from_slice(bytes);
        let Some((status, headers, head_end)) = parse_head(&self.buf)? else {
            return Ok(None);
        };
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        let framing = if find("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            Framing::Chunked
        } else {
            match find("Content-Length") {
                Some(v) => Framing::Length(v.parse().map_err(|_| invalid(format!("Content-Length {v:?}")))?),
                // 1xx, 204 and 304 have no body; WinRM always sends a length otherwise.
                None if status < 200 || status == 204 || status == 304 => Framing::Length(0),
                None if self.until_close => return Ok(None),
                None => return Err(invalid("no Content-Length and not chunked")),
            }
        };
        let body_start = head_end + 4;
        let (body, consumed) = match framing {
            Framing::Length(n) => {
                if n > MAX_BODY {
                    return Err(DecodeError::TooLong {
                        what: "HTTP body",
                        len: n,
                        limit: MAX_BODY,
                    });
                }
                if self.buf.len() < body_start + n {
                    return Ok(None);
                }
                (self.buf[body_start..body_start + n].to_vec(), body_start + n)
            }
            Framing::Chunked => match dechunk(&self.buf[body_start..])? {
                Some((body, used)) => (body, body_start + used),
                None => return Ok(None),
            },
        };
        self.buf.drain(..consumed);
        Ok(Some(Response { status, headers, body }))
    }

    /// At the end of the stream: a response whose body ran until the connection closed (no
    /// `Content-Length`, not chunked, as HTTP/1.0 servers answer), its body cut at
    /// [`MAX_BODY`]; `None` when no whole header section arrived.
    pub fn finish(&mut self) -> Result<Option<Response>, DecodeError> {
        let Some((status, headers, head_end)) = parse_head(&self.buf)? else {
            return Ok(None);
        };
        let body_start = (head_end + 4).min(self.buf.len());
        let body_end = self.buf.len().min(body_start + MAX_BODY);
        let body = self.buf[body_start..body_end].to_vec();
        self.buf.clear();
        Ok(Some(Response { status, headers, body }))
    }
}

/// The status line and headers, and where the header section ends; `None` while it is
/// incomplete.
#[allow(clippy::type_complexity)]
fn parse_head(buf: &[u8]) -> Result<Option<(u16, Vec<(String, String)>, usize)>, DecodeError> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEADER_BYTES {
            return Err(DecodeError::TooLong {
                what: "HTTP header section",
                len: buf.len(),
                limit: MAX_HEADER_BYTES,
            });
        }
        return Ok(None);
    };
    if head_end > MAX_HEADER_BYTES {
        return Err(DecodeError::TooLong {
            what: "HTTP header section",
            len: head_end,
            limit: MAX_HEADER_BYTES,
        });
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("header section is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| invalid(format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(DecodeError::TooLong {
                what: "HTTP headers",
                len: headers.len() + 1,
                limit: MAX_HEADERS,
            });
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("header line {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Some((status, headers, head_end)))
}

/// A chunked body: the body and the bytes it used, or `None` when more are needed.
fn dechunk(bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, DecodeError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
            if bytes.len() - at > 64 {
                return Err(invalid("chunk size line too long"));
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&bytes[at..at + line_end]).map_err(|_| invalid("chunk size is not text"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid(format!("chunk size {size_text:?}")))?;
        if size > MAX_BODY - body.len() {
            return Err(DecodeError::TooLong {
                what: "HTTP body",
                len: body.len().saturating_add(size),
                limit: MAX_BODY,
            });
        }
        at += line_end + 2;
        if size == 0 {
            // Trailers are not used by WinRM; the body ends at the empty line.
            return match bytes[at..].windows(2).position(|w| w == b"\r\n") {
                Some(p) => Ok(Some((body, at + p + 2))),
                None => Ok(None),
            };
        }
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[at..at + size]);
        if &bytes[at + size..at + size + 2] != b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_arrive_in_pieces_with_length_or_chunks() {
        let raw = b"HTTP/1.1 401 \r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: Kerberos\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n2;ext\r\n!!\r\n0\r\n\r\n";
        let mut p = ResponseParser::new();
        let mut got = Vec::new();
        for b in raw.iter() {
            if let Some(r) = p.feed(std::slice::from_ref(b)).unwrap() {
                got.push(r);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].status, 401);
        assert_eq!(
            got[0].headers_named("www-authenticate").collect::<Vec<_>>(),
            ["Negotiate", "Kerberos"]
        );
        assert_eq!(got[0].body, b"abc");
        assert_eq!(got[1].body, b"xyz!!");
    }

    #[test]
    fn hostile_responses_are_refused() {
        let mut p = ResponseParser::new();
        assert!(p
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
            .is_err());
        let mut p = ResponseParser::new();
        assert!(p.feed(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let mut p = ResponseParser::new();
        assert!(p.feed(&vec![b'a'; MAX_HEADER_BYTES + 10]).is_err());
        let mut p = ResponseParser::new();
        assert!(p
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .is_err());
        // A chunk size near usize::MAX after a first chunk: refused, not an overflow.
        let mut p = ResponseParser::new();
        assert!(p
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\nffffffffffffffff\r\nZZZZ")
            .is_err());
        let req = encode_request("POST", "/wsman", "h:5985", &[("Content-Type", "x")], b"body");
        assert!(req.ends_with(b"Content-Length: 4\r\n\r\nbody"));
    }
}
