//! Connection limits and timeouts of the HTTP server (ours; upstream's Go server uses read
//! 15 s, write 15 s, idle 60 s, handler 30 s and a graceful shutdown of 10 s, fixed).

use super::env::Env;
use super::ConfigError;
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// Time from accept (or a keep-alive request's first byte) to the end of the headers.
    pub const HTTP_HEADER_READ_TIMEOUT: &str = "AUTHARA_HTTP_HEADER_READ_TIMEOUT";
    /// Time for a whole request, handler included.
    pub const HTTP_REQUEST_TIMEOUT: &str = "AUTHARA_HTTP_REQUEST_TIMEOUT";
    /// Time to read a request body.
    pub const HTTP_BODY_TIMEOUT: &str = "AUTHARA_HTTP_BODY_TIMEOUT";
    /// Time a keep-alive connection may wait for its next request.
    pub const HTTP_IDLE_TIMEOUT: &str = "AUTHARA_HTTP_IDLE_TIMEOUT";
    /// Open connections at most.
    pub const HTTP_MAX_CONNECTIONS: &str = "AUTHARA_HTTP_MAX_CONNECTIONS";
    /// Request line plus headers, in bytes, at most.
    pub const HTTP_MAX_HEADER_BYTES: &str = "AUTHARA_HTTP_MAX_HEADER_BYTES";
    /// Time in-flight requests get after SIGTERM.
    pub const SHUTDOWN_TIMEOUT: &str = "AUTHARA_SHUTDOWN_TIMEOUT";
}

use var::*;

/// Limits on connections and the time a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From accept (or the first byte of a keep-alive request) to the end of the headers.
    pub header_read_timeout: Duration,
    /// Whole request, handler included; then `503 unavailable`.
    pub request_timeout: Duration,
    /// Reading the request body; then `408`.
    pub body_timeout: Duration,
    /// A keep-alive connection waiting for its next request is closed after this.
    pub idle_timeout: Duration,
    /// Open connections at most; at the cap the server stops accepting until one closes.
    pub max_connections: usize,
    /// Request line and headers together, in bytes; beyond: `431`.
    pub max_header_bytes: usize,
    /// After SIGTERM, how long in-flight requests may take before the rest are closed.
    pub shutdown_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_header_bytes: 32 * 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

const FIVE_MINUTES: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);

/// Reads the `AUTHARA_HTTP_*` limits and `AUTHARA_SHUTDOWN_TIMEOUT`.
pub(super) fn http_limits(e: &Env<'_>) -> Result<HttpLimits, ConfigError> {
    let d = HttpLimits::default();
    Ok(HttpLimits {
        header_read_timeout: e.duration(
            HTTP_HEADER_READ_TIMEOUT,
            d.header_read_timeout,
            FIVE_MINUTES,
            false,
        )?,
        request_timeout: e.duration(HTTP_REQUEST_TIMEOUT, d.request_timeout, HOUR, false)?,
        body_timeout: e.duration(HTTP_BODY_TIMEOUT, d.body_timeout, HOUR, false)?,
        idle_timeout: e.duration(HTTP_IDLE_TIMEOUT, d.idle_timeout, HOUR, false)?,
        max_connections: e.whole(HTTP_MAX_CONNECTIONS, d.max_connections, 1, 1_000_000, "")?,
        max_header_bytes: e.whole(
            HTTP_MAX_HEADER_BYTES,
            d.max_header_bytes,
            8 * 1024,
            1024 * 1024,
            " of bytes",
        )?,
        shutdown_timeout: e.duration(SHUTDOWN_TIMEOUT, d.shutdown_timeout, FIVE_MINUTES, false)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<HttpLimits, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let get = |k: &str| map.get(k).cloned();
        http_limits(&Env { get: &get })
    }

    #[test]
    fn defaults_follow_upstreams_timeouts() {
        let l = read(&[]).unwrap();
        assert_eq!(l, HttpLimits::default());
        assert_eq!(l.header_read_timeout, Duration::from_secs(10));
        assert_eq!(l.request_timeout, Duration::from_secs(30));
        assert_eq!(l.body_timeout, Duration::from_secs(15));
        assert_eq!(l.idle_timeout, Duration::from_secs(60));
        assert_eq!(l.max_connections, 10_000);
        assert_eq!(l.max_header_bytes, 32_768);
        assert_eq!(l.shutdown_timeout, Duration::from_secs(10));
    }

    #[test]
    fn every_value_can_be_set() {
        let l = read(&[
            ("AUTHARA_HTTP_HEADER_READ_TIMEOUT", "1s"),
            ("AUTHARA_HTTP_REQUEST_TIMEOUT", "2m"),
            ("AUTHARA_HTTP_BODY_TIMEOUT", "500ms"),
            ("AUTHARA_HTTP_IDLE_TIMEOUT", "90s"),
            ("AUTHARA_HTTP_MAX_CONNECTIONS", "2"),
            ("AUTHARA_HTTP_MAX_HEADER_BYTES", "8192"),
            ("AUTHARA_SHUTDOWN_TIMEOUT", "3s"),
        ])
        .unwrap();
        assert_eq!(
            l,
            HttpLimits {
                header_read_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(120),
                body_timeout: Duration::from_millis(500),
                idle_timeout: Duration::from_secs(90),
                max_connections: 2,
                max_header_bytes: 8192,
                shutdown_timeout: Duration::from_secs(3),
            }
        );
    }

    #[test]
    fn out_of_bounds_values_name_their_variable() {
        for (var, value, needle) in [
            (
                "AUTHARA_HTTP_HEADER_READ_TIMEOUT",
                "0",
                "must be longer than 0",
            ),
            ("AUTHARA_HTTP_HEADER_READ_TIMEOUT", "6m", "at most 5m"),
            ("AUTHARA_HTTP_REQUEST_TIMEOUT", "ten", "must be a duration"),
            ("AUTHARA_HTTP_BODY_TIMEOUT", "2h", "at most 1h"),
            ("AUTHARA_HTTP_IDLE_TIMEOUT", "0s", "must be longer than 0"),
            ("AUTHARA_HTTP_MAX_CONNECTIONS", "0", "from 1 to 1000000"),
            (
                "AUTHARA_HTTP_MAX_HEADER_BYTES",
                "4096",
                "from 8192 to 1048576",
            ),
            ("AUTHARA_SHUTDOWN_TIMEOUT", "-1s", "must be a duration"),
        ] {
            let e = read(&[(var, value)]).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(var), "{msg}");
            assert!(msg.contains(needle), "{var}={value}: {msg}");
        }
    }
}
