//! OWA as the network sees it: one unauthenticated GET of the OWA folder over plain HTTP, and
//! what its answer proves about the `owa.*` facts the front-end baseline checks (SSL required,
//! Basic authentication offered in clear, anonymous access). Used where the configuration
//! could not be read (Exchange 2000/2003 keep it in the IIS metabase, which neither transport
//! reads); facts read from the configuration stand.

use std::time::Duration;

use exsweep_wire::http1::Response;

use crate::facts::{Fact, Failure, FailureKind, HostFacts, Source, Transport, Value};
use crate::timefmt::Timestamp;
use crate::transport::{http, socket_addr, TransportError};

/// The facts an answer can settle.
pub const OWA_FACTS: [&str; 4] = [
    "owa.ssl_required",
    "owa.ssl_128bit_required",
    "owa.basic_auth_enabled",
    "owa.anonymous_enabled",
];

/// The OWA folder of the host's Exchange generation: `/exchange/` up to 2003, `/owa/` after.
pub fn owa_path(facts: &HostFacts) -> &'static str {
    match facts.get("exchange.generation").map(|f| &f.value) {
        Some(Value::Text(g)) if matches!(g.as_str(), "5.5" | "2000" | "2003") => "/exchange/",
        _ => "/owa/",
    }
}

/// What one answer proves: each fact's value, or why it stays unknown.
pub fn judge(answer: &Result<Response, TransportError>) -> Vec<(&'static str, Value)> {
    let unknown = |reason: String| {
        Value::Unavailable(Failure {
            kind: FailureKind::Protocol,
            reason,
        })
    };
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            let failure = Failure {
                kind: e.kind(),
                reason: format!("OWA over plain HTTP: {e}"),
            };
            return OWA_FACTS
                .iter()
                .map(|n| (*n, Value::Unavailable(failure.clone())))
                .collect();
        }
    };
    let status = response.status;
    let body = String::from_utf8_lossy(&response.body[..response.body.len().min(4096)]).to_ascii_lowercase();
    // A 200 proves OWA is served in clear only when it is OWA that answered (Exchange adds
    // MS-WebStorage to OWA's pages), not a landing page or a load balancer's.
    let is_owa = response.header("MS-WebStorage").is_some()
        || ["outlook web access", "outlook web app", "outlook on the web"]
            .iter()
            .any(|m| body.contains(m));
    // IIS names the substatus in its error page: 403.4 "SSL required", 403.5 "SSL 128 required".
    let ssl_refusal = status == 403
        && (body.contains("403.4")
            || body.contains("403.5")
            || body.contains("ssl required")
            || body.contains("ssl is required")
            || body.contains("secure channel"));
    let to_https = (matches!(status, 301 | 302 | 303 | 307 | 308)
        && response
            .header("Location")
            .is_some_and(|l| l.trim().to_ascii_lowercase().starts_with("https://")))
        // A page that is not OWA and sends the browser on to https (an IIS custom 403.4 error
        // page, say): a meta refresh or a script setting the location to an https URL.
        || (status == 200 && !is_owa && sends_to_https(&body));
    let schemes = challenge_schemes(response);
    match status {
        200 if !to_https && !is_owa => OWA_FACTS
            .iter()
            .map(|n| {
                (
                    *n,
                    unknown(
                        "OWA over plain HTTP answered HTTP 200 with a page that does not show itself as OWA".into(),
                    ),
                )
            })
            .collect(),
        // Served in clear: no SSL, let alone 128-bit SSL, is required.
        200 | 401 if !to_https => {
            let basic = if status == 401 {
                Value::Bool(schemes.iter().any(|s| s == "basic"))
            } else {
                unknown(
                    "OWA answered in clear without asking for credentials, so its authentication methods are not shown"
                        .into(),
                )
            };
            vec![
                ("owa.ssl_required", Value::Bool(false)),
                ("owa.ssl_128bit_required", Value::Bool(false)),
                ("owa.basic_auth_enabled", basic),
                ("owa.anonymous_enabled", Value::Bool(status == 200)),
            ]
        }
        _ if ssl_refusal || to_https => {
            let hidden = format!(
                "not shown over plain HTTP (HTTP {status}{})",
                if to_https {
                    ", redirected to HTTPS"
                } else {
                    ", SSL required"
                }
            );
            vec![
                ("owa.ssl_required", Value::Bool(true)),
                ("owa.ssl_128bit_required", unknown(hidden.clone())),
                ("owa.basic_auth_enabled", unknown(hidden.clone())),
                ("owa.anonymous_enabled", unknown(hidden)),
            ]
        }
        _ => OWA_FACTS
            .iter()
            .map(|n| (*n, unknown(format!("OWA over plain HTTP answered HTTP {status}"))))
            .collect(),
    }
}

/// Whether a (lower-cased) page moves the browser to an https URL: a meta refresh whose URL
/// is https, or a script assigning or replacing the location with one.
fn sends_to_https(body: &str) -> bool {
    let squeezed: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let refresh = squeezed.contains("http-equiv=\"refresh\"") || squeezed.contains("http-equiv=refresh");
    (refresh && squeezed.contains("url=https://"))
        || [
            "location=\"https://",
            "location='https://",
            "location.href=\"https://",
            "location.href='https://",
            "location.replace(\"https://",
            "location.replace('https://",
        ]
        .iter()
        .any(|p| squeezed.contains(p))
}

/// The authentication schemes a response offers, lower-cased: every `WWW-Authenticate` header,
/// each split at commas, since a proxy may merge several challenges into one line
/// (`Negotiate, NTLM, Basic realm="x"`); a segment whose first word is `name=value` is a
/// parameter of the challenge before it, not a scheme.
fn challenge_schemes(response: &Response) -> Vec<String> {
    response
        .headers_named("WWW-Authenticate")
        .flat_map(|v| v.split(','))
        .filter_map(|segment| segment.split_whitespace().next())
        .filter(|word| !word.contains('='))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Asks OWA over plain HTTP and records what the answer proves, for the `owa.*` facts that
/// are missing or could not be read.
pub async fn collect(address: &str, port: u16, connect_timeout: Duration, timeout: Duration, facts: &mut HostFacts) {
    let open: Vec<&str> = OWA_FACTS
        .iter()
        .copied()
        .filter(|n| facts.get(n).is_none_or(|f| matches!(f.value, Value::Unavailable(_))))
        .collect();
    if open.is_empty() {
        return;
    }
    let path = owa_path(facts);
    let addr = socket_addr(address, port);
    let started = std::time::Instant::now();
    // A port that accepts and never answers must not hold the host to its deadline.
    let timeout = timeout.min(connect_timeout + Duration::from_secs(10));
    let answer = http::get(&addr, &addr, path, connect_timeout, timeout).await;
    tracing::debug!(phase = "owa", ms = started.elapsed().as_millis() as u64, "phase done");
    let what = match &answer {
        Ok(r) => format!("GET http://{addr}{path} (no credentials): HTTP {}", r.status),
        Err(_) => format!("GET http://{addr}{path} (no credentials)"),
    };
    for (name, value) in judge(&answer) {
        if open.contains(&name) {
            let source = Source {
                transport: Transport::Http,
                path: what.clone(),
                value: None,
                read_at: Timestamp::now(),
            };
            facts.insert(Fact::new(name, value, source));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exsweep_wire::http1::ResponseParser;

    fn answer(raw: &str) -> Result<Response, TransportError> {
        let mut p = ResponseParser::until_close();
        Ok(p.feed(raw.as_bytes()).unwrap().or_else(|| p.finish().unwrap()).unwrap())
    }

    fn value<'a>(judged: &'a [(&str, Value)], name: &str) -> &'a Value {
        &judged.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn basic_offered_in_clear_fails_ssl_and_basic() {
        let judged = judge(&answer(
            "HTTP/1.1 401 Access Denied\r\nServer: Microsoft-IIS/5.0\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\nWWW-Authenticate: Basic realm=\"ex1\"\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(value(&judged, "owa.ssl_required"), &Value::Bool(false));
        assert_eq!(value(&judged, "owa.ssl_128bit_required"), &Value::Bool(false));
        assert_eq!(value(&judged, "owa.basic_auth_enabled"), &Value::Bool(true));
        assert_eq!(value(&judged, "owa.anonymous_enabled"), &Value::Bool(false));
    }

    #[test]
    fn challenges_merged_into_one_header_still_show_basic() {
        let judged = judge(&answer(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate, NTLM, Basic realm=\"ex1\", charset=\"UTF-8\"\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(value(&judged, "owa.basic_auth_enabled"), &Value::Bool(true));
        let digest_only = judge(&answer(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"basic\", nonce=\"x\"\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(value(&digest_only, "owa.basic_auth_enabled"), &Value::Bool(false));
    }

    #[test]
    fn a_200_counts_only_when_it_is_owa_and_not_a_way_to_https() {
        let owa = judge(&answer(
            "HTTP/1.1 200 OK\r\nMS-WebStorage: 6.0.6249\r\nContent-Length: 13\r\n\r\n<html></html>",
        ));
        assert_eq!(value(&owa, "owa.anonymous_enabled"), &Value::Bool(true));
        assert_eq!(value(&owa, "owa.ssl_required"), &Value::Bool(false));
        let landing = judge(&answer("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n<html></html>"));
        assert!(landing.iter().all(|(_, v)| matches!(v, Value::Unavailable(_))));
        let refresh = judge(&answer(
            "HTTP/1.1 200 OK\r\nContent-Length: 71\r\n\r\n<meta http-equiv=\"Refresh\" content=\"0;URL=https://ex1/exchange/\"></html>",
        ));
        assert_eq!(value(&refresh, "owa.ssl_required"), &Value::Bool(true));
        assert!(matches!(
            value(&refresh, "owa.anonymous_enabled"),
            Value::Unavailable(_)
        ));
    }

    #[test]
    fn owas_own_page_with_an_https_link_is_still_served_in_clear() {
        let judged = judge(&answer(
            "HTTP/1.1 200 OK\r\nMS-WebStorage: 6.0.6249\r\nContent-Length: 84\r\n\r\n<a href=\"https://ex1/exchange/\">secure</a><script>window.location.hash='x'</script>",
        ));
        assert_eq!(value(&judged, "owa.ssl_required"), &Value::Bool(false));
        assert_eq!(value(&judged, "owa.anonymous_enabled"), &Value::Bool(true));
        let elsewhere = judge(&answer(
            "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n<script>window.location = \"https://ex1/exchange/\";</script>",
        ));
        assert_eq!(value(&elsewhere, "owa.ssl_required"), &Value::Bool(true));
    }

    #[test]
    fn integrated_only_in_clear_is_not_basic() {
        let judged = judge(&answer(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(value(&judged, "owa.basic_auth_enabled"), &Value::Bool(false));
    }

    #[test]
    fn ssl_required_page_or_https_redirect_proves_ssl_only() {
        // Close-delimited, as an HTTP/1.0-style error page may be.
        let forbidden = answer(
            "HTTP/1.1 403 Access Forbidden\r\nContent-Type: text/html\r\n\r\n<html><title>The page must be viewed over a secure channel</title>HTTP 403.4 - Forbidden: SSL required</html>",
        );
        let redirected = answer("HTTP/1.1 302 Found\r\nLocation: https://ex1/owa/\r\nContent-Length: 0\r\n\r\n");
        for judged in [judge(&forbidden), judge(&redirected)] {
            assert_eq!(value(&judged, "owa.ssl_required"), &Value::Bool(true));
            assert!(matches!(
                value(&judged, "owa.basic_auth_enabled"),
                Value::Unavailable(_)
            ));
            assert!(matches!(value(&judged, "owa.anonymous_enabled"), Value::Unavailable(_)));
        }
    }

    #[test]
    fn anything_else_proves_nothing() {
        for raw in [
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden",
            "HTTP/1.1 302 Found\r\nLocation: http://ex1/elsewhere\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        ] {
            let judged = judge(&answer(raw));
            assert!(judged.iter().all(|(_, v)| matches!(v, Value::Unavailable(_))), "{raw}");
        }
        let refused = Err(TransportError::Io {
            op: "connect",
            addr: "127.0.0.1:80".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        });
        let judged = judge(&refused);
        assert!(judged
            .iter()
            .all(|(_, v)| matches!(v, Value::Unavailable(f) if f.kind == FailureKind::Unreachable)));
    }
}
