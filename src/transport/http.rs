//! One unauthenticated HTTP GET on its own connection, for what a host's web server shows
//! anyone on the network (OWA's answer over plain HTTP). No credential is ever sent, so a
//! password can never cross the wire in clear and no try counts toward a lockout.

use std::time::Duration;

use exsweep_wire::http1::{self, Response, ResponseParser, MAX_HEADER_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{io_error, TransportError};

/// Most bytes read from one answer: the header section and the start of the body, which is
/// all the judging needs (an error page names its IIS substatus early).
const MAX_READ: usize = MAX_HEADER_BYTES + 64 * 1024;

/// `GET path` on `addr` (`host:port`), the connection closed after the answer. Connecting
/// gets `connect_timeout`, the whole exchange `timeout`.
pub async fn get(
    addr: &str,
    host_header: &str,
    path: &str,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Response, TransportError> {
    let exchange = async {
        let mut stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(s) => s.map_err(io_error("connect", addr))?,
            Err(_) => {
                return Err(TransportError::Io {
                    op: "connect",
                    addr: addr.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no TCP connection within {connect_timeout:?} (port filtered?)"),
                    ),
                })
            }
        };
        let request = http1::encode_request(
            "GET",
            path,
            host_header,
            &[("User-Agent", "exsweep"), ("Accept", "*/*"), ("Connection", "close")],
            &[],
        );
        stream.write_all(&request).await.map_err(io_error("send", addr))?;
        let mut parser = ResponseParser::until_close();
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0usize;
        loop {
            let n = stream.read(&mut buf).await.map_err(io_error("receive", addr))?;
            let decoded = if n == 0 {
                parser.finish()
            } else {
                read += n;
                parser.feed(&buf[..n])
            };
            let decode_error = |source| TransportError::Decode {
                what: "HTTP response",
                source,
            };
            let closed = || TransportError::Io {
                op: "receive",
                addr: addr.to_owned(),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            };
            match decoded.map_err(decode_error)? {
                Some(response) => return Ok(response),
                None if n == 0 => return Err(closed()),
                // Enough of a close-delimited answer to judge it.
                None if read >= MAX_READ => return parser.finish().map_err(decode_error)?.ok_or_else(closed),
                None => {}
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout(timeout)),
    }
}
