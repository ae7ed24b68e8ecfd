//! The browser end-to-end test (STYLE, the test pyramid, item 4): Debian's `chromium` driven
//! through `chromium-driver` over WebDriver, once with JavaScript off and once with it on:
//! signup → account → logout → login with `return_to`; with JavaScript off, a password reset and
//! a sign-in through an OpenID Connect provider (the test provider of `idp.rs`).
//!
//! Each case gets a fresh server (SQLite), its own chromedriver on a free port, a fresh browser
//! profile and a new user. Where the driver or the browser is missing, the test prints a notice
//! and passes (fails under `CI=true`). `AUTHARA_TEST_CHROMEDRIVER` and `AUTHARA_TEST_CHROMIUM` override the Debian paths.

use crate::helpers::{email, free_port, Backend, TestApp};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SKIPPED: &str = "chromium/chromium-driver not installed (browser end-to-end test)";
const PASSWORD: &str = "correct horse battery staple";
const ACCOUNT: &str = "/auth/account";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_javascript_signs_up_logs_out_and_logs_back_in_to_its_return_to() {
    signup_account_logout_login(JavaScript::Off).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_with_javascript_signs_up_logs_out_and_logs_back_in_to_its_return_to() {
    signup_account_logout_login(JavaScript::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_javascript_resets_a_forgotten_password_with_the_emailed_code() {
    let found = installed();
    if !crate::helpers::require_service(SKIPPED, found.is_some()) {
        return;
    }
    let Some((driver_bin, chromium_bin)) = found else {
        return;
    };
    let smtp = crate::smtp_server::SmtpServer::start(Default::default()).await;
    let app = crate::email::spawn(Backend::Sqlite, &smtp, &[]).await;
    let user = app.signed_up("browser-forgot").await;
    let driver = Driver::start(&driver_bin).await;
    let browser = driver.session(&chromium_bin, JavaScript::Off).await;
    assert_javascript_is(&browser, JavaScript::Off).await;

    // From the login page, "Forgot your password?".
    browser.goto(&app.url("/auth/login")).await.unwrap();
    browser
        .find(Locator::Id("forgot-password"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_location(&browser, "/auth/password-reset", None).await;
    assert_eq!(heading(&browser).await, "Reset your password");
    let new_password = "a forgotten one replaced";
    type_into(&browser, "email", &user).await;
    type_into(&browser, "new_password", new_password).await;
    type_into(&browser, "confirm_password", new_password).await;
    click_button(&browser, "Email me a code").await;
    wait_for_path(&browser, "/auth/verify-challenge/password-reset").await;
    assert_eq!(text_of(&browser, "challenge-email").await, user);

    // The code from the email.
    let code = crate::email::nth_mail_to(&smtp, &user, 1).await.code();
    type_into(&browser, "code", &code).await;
    click_button(&browser, "Verify").await;
    wait_for_path(&browser, "/auth/login").await;
    assert!(visible_text(&browser)
        .await
        .contains("Your password has been reset. Please log in again."));

    // The new password signs in.
    type_into(&browser, "email", &user).await;
    type_into(&browser, "password", new_password).await;
    click_button(&browser, "Sign in").await;
    wait_for_location(&browser, "/", None).await;
    browser.goto(&app.url(ACCOUNT)).await.unwrap();
    wait_for_location(&browser, ACCOUNT, None).await;
    assert_eq!(text_of(&browser, "account-email").await, user);
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_javascript_signs_in_through_an_openid_connect_provider() {
    let found = installed();
    if !crate::helpers::require_service(SKIPPED, found.is_some()) {
        return;
    }
    let Some((driver_bin, chromium_bin)) = found else {
        return;
    };
    let idp = crate::idp::TestIdp::start().await;
    let user = email("browser-sso");
    idp.next_user("browser-sub", &user, true);
    let app = crate::code_flow::spawn(Backend::Sqlite, &idp, &[]).await;
    let driver = Driver::start(&driver_bin).await;
    let browser = driver.session(&chromium_bin, JavaScript::Off).await;
    assert_javascript_is(&browser, JavaScript::Off).await;

    // The login page's link: start, the provider (which approves at once), the callback, and
    // back to return_to, signed in, all by redirects.
    browser
        .goto(&app.url("/auth/login?return_to=/auth/account"))
        .await
        .unwrap();
    browser
        .find(Locator::LinkText("Continue with Acme SSO"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_location(&browser, ACCOUNT, None).await;
    assert_eq!(text_of(&browser, "account-email").await, user);
    browser.close().await.unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JavaScript {
    Off,
    On,
}

async fn signup_account_logout_login(js: JavaScript) {
    let found = installed();
    if !crate::helpers::require_service(SKIPPED, found.is_some()) {
        return;
    }
    let Some((driver_bin, chromium_bin)) = found else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let driver = Driver::start(&driver_bin).await;
    let browser = driver.session(&chromium_bin, js).await;
    let user = email(match js {
        JavaScript::Off => "browser-js-off",
        JavaScript::On => "browser-js-on",
    });

    assert_javascript_is(&browser, js).await;

    // Signup, asked for from a page that wants to come back to the account page.
    browser
        .goto(&app.url("/auth/signup?return_to=/auth/account"))
        .await
        .unwrap();
    assert_eq!(heading(&browser).await, "Create account");
    type_into(&browser, "email", &user).await;
    type_into(&browser, "password", PASSWORD).await;
    click_button(&browser, "Create account").await;

    // The account page, signed in as the new user.
    wait_for_location(&browser, ACCOUNT, None).await;
    assert_eq!(heading(&browser).await, "Your account");
    assert_eq!(text_of(&browser, "account-email").await, user);
    assert!(
        visible_text(&browser).await.contains("this session"),
        "the account page lists the current session"
    );

    // Logout. SPEC §7 sends the browser to `return_to` or `/`; the account page's logout form
    // carries no `return_to`, so it ends at `/`, which belongs to the application in front of
    // Authara (none here, so that page is this server's 404).
    click_button(&browser, "Log out").await;
    wait_for_location(&browser, "/", None).await;

    // Logged out for real: the account page now sends the browser to the login page, which keeps
    // where it came from (`/auth/login?return_to=/auth/account`).
    browser.goto(&app.url(ACCOUNT)).await.unwrap();
    wait_for_location(&browser, "/auth/login", Some(ACCOUNT)).await;
    assert_eq!(heading(&browser).await, "Sign in");

    // Login; the browser ends at the `return_to` path (login's default would be `/`).
    type_into(&browser, "email", &user).await;
    type_into(&browser, "password", PASSWORD).await;
    click_button(&browser, "Sign in").await;
    wait_for_location(&browser, ACCOUNT, None).await;
    assert_eq!(heading(&browser).await, "Your account");
    assert_eq!(text_of(&browser, "account-email").await, user);

    browser.close().await.unwrap();
}

/// The driver and browser binaries, when both are installed.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let path = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let driver = path("AUTHARA_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = path("AUTHARA_TEST_CHROMIUM", "/usr/bin/chromium");
    (driver.is_file() && chromium.is_file()).then_some((driver, chromium))
}

/// A chromedriver process of our own, in its own process group; dropping it kills the group
/// (driver and any browser it started), also when the test failed, then removes `dir`: the
/// browser profile and everything the two would otherwise leave in HOME or the temp directory.
struct Driver {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it accepts connections.
    async fn start(bin: &Path) -> Self {
        use std::os::unix::process::CommandExt as _;
        // Another process may take the port between our probe and chromedriver's bind: retry.
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let scratch = dir.path().join("tmp");
            std::fs::create_dir(&scratch).unwrap();
            // Chromium also writes crash reports and settings under HOME and the XDG directories.
            let child = Command::new(bin)
                .arg(format!("--port={port}"))
                .env("TMPDIR", &scratch)
                .env("HOME", dir.path())
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("XDG_CACHE_HOME", dir.path().join("cache"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut driver = Driver { child, port, dir };
            if driver.wait_until_listening().await {
                return driver;
            }
        }
        panic!("chromedriver did not start listening (three attempts)");
    }

    async fn wait_until_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// A new browser session: headless Chromium on a fresh, empty profile, kept off the network
    /// (no background, component or sync traffic), with JavaScript as asked.
    async fn session(&self, chromium: &Path, js: JavaScript) -> Client {
        let mut options = json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", self.dir.path().join("profile").display()),
            ],
        });
        if js == JavaScript::Off {
            // What an administrator's policy does: JavaScript blocked for every site.
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut caps = Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromium did not start through chromedriver: {e}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Signal the whole group: chromedriver alone dying could leave Chromium behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Proves the JavaScript setting took effect. Authara's pages carry no script at all (and their
/// CSP allows no inline script), so they cannot tell; a page whose text only a script changes
/// can. The setting is browser-wide, so what holds on this page holds on the server's pages.
/// (WebDriver's own "execute script" still runs with JavaScript blocked, so it cannot tell.)
async fn assert_javascript_is(browser: &Client, js: JavaScript) {
    browser
        .goto(
            "data:text/html,<p%20id=js>off</p>\
             <script>document.getElementById('js').textContent='on'</script>",
        )
        .await
        .unwrap();
    let expected = match js {
        JavaScript::Off => "off",
        JavaScript::On => "on",
    };
    assert_eq!(text_of(browser, "js").await, expected, "JavaScript state");
}

/// Types into the input with this id, as a user would (key events, not a value assignment).
async fn type_into(browser: &Client, id: &str, text: &str) {
    let input = browser.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Clicks the button a user would see with this label.
async fn click_button(browser: &Client, label: &str) {
    let xpath = format!("//button[normalize-space()='{label}']");
    browser
        .find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn heading(browser: &Client) -> String {
    browser
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn text_of(browser: &Client, id: &str) -> String {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn visible_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the browser is at `path` with exactly the given `return_to` (or no query), on
/// the test server; fails with where it is instead.
/// Waits until the browser is at `path`, whatever the query.
async fn wait_for_path(browser: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = browser.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {path}, the browser is at {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_location(browser: &Client, path: &str, return_to: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = browser.current_url().await.unwrap();
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let wanted: Vec<(String, String)> = return_to
            .map(|r| ("return_to".to_owned(), r.to_owned()))
            .into_iter()
            .collect();
        if url.scheme() == "http" && url.path() == path && query == wanted {
            return;
        }
        if Instant::now() >= deadline {
            let h1 = browser.find(Locator::Css("h1")).await;
            let h1 = match h1 {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("expected {path} (return_to {return_to:?}), the browser is at {url} ({h1:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
