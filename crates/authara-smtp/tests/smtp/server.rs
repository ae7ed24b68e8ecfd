//! A test SMTP server on 127.0.0.1 and a random port: the outside world's mail relay, for real.
//! It speaks enough of RFC 5321 for a client: `EHLO`/`HELO`, `STARTTLS` (with a certificate
//! generated per server, which the test trusts), `AUTH PLAIN` and `AUTH LOGIN` (one accepted
//! user), `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP`, `QUIT`. Every accepted message is kept, with
//! its envelope and whether it came over TLS, for the test to read.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The raw `DATA`, dot-unstuffed, without the final `.`.
    pub data: String,
    pub over_tls: bool,
    /// The user that authenticated, if any.
    pub user: Option<String>,
}

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Offer `STARTTLS` in the `EHLO` answer.
    pub starttls: bool,
    /// Require this `(user, password)`; without it, `AUTH` is not offered.
    pub login: Option<(String, String)>,
    /// Answer `DATA`'s end with this code instead of `250` (e.g. 451, 554).
    pub data_reply: Option<u16>,
}

/// A running server; stops when dropped.
pub struct SmtpServer {
    pub port: u16,
    /// The server certificate (PEM), to trust in the client.
    pub cert_pem: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Starts a server with `behaviour` on a random port.
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_on(0, behaviour).await
    }

    /// Starts a server with `behaviour` on `port` of 127.0.0.1 (0: a random one), e.g. again on
    /// the port of a server that was stopped, for a client configured with it.
    pub async fn start_on(port: u16, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_pem = cert.cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (behaviour, acceptor, sink) =
                    (behaviour.clone(), acceptor.clone(), sink.clone());
                tokio::spawn(async move {
                    let _ = session(stream, behaviour, acceptor, sink).await;
                });
            }
        });
        Self {
            port,
            cert_pem,
            received,
            task,
        }
    }

    /// Every message accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// What a session knows so far.
#[derive(Default)]
struct State {
    user: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

/// What ended one half of a session: the client quit, or asked for TLS.
enum Next {
    Quit,
    StartTls,
}

async fn session(
    stream: tokio::net::TcpStream,
    behaviour: Behaviour,
    acceptor: tokio_rustls::TlsAcceptor,
    sink: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let mut plain = BufReader::new(stream);
    plain
        .get_mut()
        .write_all(b"220 test.invalid ESMTP\r\n")
        .await?;
    match converse(&mut plain, &behaviour, false, &sink).await? {
        Next::Quit => Ok(()),
        Next::StartTls => {
            let tls = acceptor.accept(plain.into_inner()).await?;
            let mut tls = BufReader::new(tls);
            converse(&mut tls, &behaviour, true, &sink)
                .await
                .map(|_| ())
        }
    }
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    behaviour: &Behaviour,
    over_tls: bool,
    sink: &Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<Next> {
    let mut state = State::default();
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(Next::Quit);
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let mut r = String::from("250-test.invalid\r\n");
            if behaviour.starttls && !over_tls {
                r.push_str("250-STARTTLS\r\n");
            }
            if behaviour.login.is_some() {
                r.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            r.push_str("250 8BITMIME\r\n");
            r
        } else if upper.starts_with("HELO") {
            "250 test.invalid\r\n".into()
        } else if upper == "STARTTLS" && behaviour.starttls && !over_tls {
            io.get_mut().write_all(b"220 go ahead\r\n").await?;
            return Ok(Next::StartTls);
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let arg = cmd.get(cmd.len() - rest.len()..).unwrap_or("").trim();
            let arg = if arg.is_empty() {
                io.get_mut().write_all(b"334 \r\n").await?;
                read_arg(io).await?
            } else {
                arg.to_owned()
            };
            let decoded = STANDARD.decode(arg.as_bytes()).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let (user, pass) = match parts.as_slice() {
                [_, u, p] => (
                    String::from_utf8_lossy(u).into_owned(),
                    String::from_utf8_lossy(p).into_owned(),
                ),
                _ => (String::new(), String::new()),
            };
            auth_reply(behaviour, &mut state, user, pass)
        } else if upper.starts_with("AUTH LOGIN") {
            io.get_mut().write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let user = b64(&read_arg(io).await?);
            io.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let pass = b64(&read_arg(io).await?);
            auth_reply(behaviour, &mut state, user, pass)
        } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
            if behaviour.login.is_some() && state.user.is_none() {
                "530 authentication required\r\n".into()
            } else {
                state.mail_from = Some(address(&cmd, from.len()));
                "250 ok\r\n".into()
            }
        } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
            state.rcpt_to.push(address(&cmd, to.len()));
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            io.get_mut().write_all(b"354 end with .\r\n").await?;
            let data = read_data(io).await?;
            match behaviour.data_reply {
                Some(code) => format!("{code} refused by the test\r\n"),
                None => {
                    sink.lock().unwrap().push(Received {
                        mail_from: state.mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut state.rcpt_to),
                        data,
                        over_tls,
                        user: state.user.clone(),
                    });
                    "250 queued\r\n".into()
                }
            }
        } else if upper == "RSET" {
            state.mail_from = None;
            state.rcpt_to.clear();
            "250 ok\r\n".into()
        } else if upper == "NOOP" {
            "250 ok\r\n".into()
        } else if upper == "QUIT" {
            io.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(Next::Quit);
        } else {
            "502 not implemented\r\n".into()
        };
        io.get_mut().write_all(reply.as_bytes()).await?;
    }
}

fn auth_reply(behaviour: &Behaviour, state: &mut State, user: String, pass: String) -> String {
    match &behaviour.login {
        Some((u, p)) if *u == user && *p == pass => {
            state.user = Some(user);
            "235 authenticated\r\n".into()
        }
        _ => "535 bad credentials\r\n".into(),
    }
}

fn b64(s: &str) -> String {
    String::from_utf8_lossy(&STANDARD.decode(s.trim().as_bytes()).unwrap_or_default()).into_owned()
}

/// The `<address>` after `MAIL FROM:` / `RCPT TO:` (`rest_len` bytes from the end of `cmd`).
fn address(cmd: &str, rest_len: usize) -> String {
    let rest = cmd.get(cmd.len() - rest_len..).unwrap_or("").trim();
    let rest = rest.split_whitespace().next().unwrap_or("");
    rest.trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

async fn read_arg<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
) -> std::io::Result<String> {
    let mut l = String::new();
    io.read_line(&mut l).await?;
    Ok(l.trim_end().to_owned())
}

/// Reads `DATA` up to the line holding a lone `.`, undoing dot-stuffing.
async fn read_data<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut l = String::new();
    loop {
        l.clear();
        if io.read_line(&mut l).await? == 0 {
            return Ok(data);
        }
        if l == ".\r\n" || l == ".\n" {
            return Ok(data);
        }
        let line = l.strip_prefix('.').unwrap_or(&l);
        data.push_str(line);
    }
}
