//! Raw HTTP/1.1 over TCP, for the malformed requests no HTTP client agrees to send.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Limits for the whole exchange: generous, the machine may be loaded.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to a raw request: its status (`None` when the server closed the connection
/// without answering, which it may do for garbage) and the whole response text.
#[derive(Debug)]
pub struct RawResponse {
    pub status: Option<u16>,
    pub text: String,
}

/// Sends `head` (the request line and headers, each line ended by CRLF, without the blank
/// line), then `Connection: close`, a blank line and `body`; reads until the server closes.
pub async fn send(addr: SocketAddr, head: &[u8], body: &[u8]) -> RawResponse {
    exchange(addr, &request(head, body), false).await
}

/// Like [`send`], but hangs up its sending side right after the request, as a client that
/// goes away does: the server may drop the request mid-way (and answer nothing).
pub async fn send_and_hang_up(addr: SocketAddr, head: &[u8], body: &[u8]) -> RawResponse {
    exchange(addr, &request(head, body), true).await
}

fn request(head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut req = head.to_vec();
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    req.extend_from_slice(body);
    req
}

/// Sends exactly `bytes`; reads until the server closes.
async fn exchange(addr: SocketAddr, bytes: &[u8], hang_up: bool) -> RawResponse {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The server may answer (and close) before it read everything: not an error here.
        let _ = s.write_all(bytes).await;
        if hang_up {
            let _ = s.shutdown().await;
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    };
    let out = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("the server answered or closed within the timeout");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok());
    RawResponse { status, text }
}

/// Asserts that the server did not fail: no 5xx (a closed connection is fine for garbage).
pub fn assert_no_5xx(r: &RawResponse, what: &str) {
    if let Some(s) = r.status {
        assert!(s < 500, "{what}: {s}\n{}", r.text);
    }
}
