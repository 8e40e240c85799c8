//! The browser harness: a real Chromium opens a page served on loopback, clicks a button that
//! runs a script, and takes a screenshot; and a missing program fails with what to install.

use std::path::PathBuf;
use std::time::Duration;

use immutable_testkit::browser::{Browser, BrowserError};
use immutable_testkit::local::process_alive;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title></head>
<body style="font: 32px sans-serif">
<p id="status">waiting</p>
<button id="go" onclick="
  document.getElementById('status').textContent = 'clicked';
  document.body.insertAdjacentHTML('beforeend', '<p id=done>done</p>');
">Go</button>
</body></html>"#;

/// Serves `PAGE` to every request on a loopback port until the test ends; its URL.
async fn serve_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

/// Processes whose command line names `needle` (the browser's profile directory).
fn processes_naming(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .filter(|pid| process_alive(u64::from(*pid)))
        .collect()
}

/// Where a test leaves what a person may want to look at (Cargo's directory for them).
fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_runs_the_page_script_and_a_screenshot_is_a_png() {
    let url = serve_page().await;
    let started = std::time::Instant::now();
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("browser started in {:?}", started.elapsed());
    let profile = browser.scratch_dir().display().to_string();
    let driver = browser.driver_pid();

    browser.client.goto(&url).await.unwrap();
    let status = browser
        .wait_for("#status", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status.text().await.unwrap(), "waiting");
    browser
        .wait_for("#go", Duration::from_secs(5))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("#done", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(status.text().await.unwrap(), "clicked");

    let missing = browser.wait_for("#never", Duration::from_millis(300)).await;
    assert!(
        matches!(missing, Err(BrowserError::Timeout { ref selector, .. }) if selector == "#never"),
        "{missing:?}"
    );

    let path = artifact("browser-harness.png");
    let written = browser.screenshot_to(&path).await.unwrap();
    let png = std::fs::read(&path).unwrap();
    assert_eq!(png.len(), written);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {path:?}");
    eprintln!("screenshot: {} ({written} bytes)", path.display());

    assert!(
        !processes_naming(&profile).is_empty(),
        "Chromium runs with the profile"
    );
    drop(browser);
    assert!(
        !process_alive(u64::from(driver)),
        "the driver outlives its Browser"
    );
    assert_eq!(
        processes_naming(&profile),
        Vec::<u32>::new(),
        "Chromium outlives its Browser"
    );
    assert!(
        !std::path::Path::new(&profile).exists(),
        "the profile is left behind"
    );
}

#[tokio::test]
async fn close_ends_the_session_and_the_driver() {
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    let driver = browser.driver_pid();
    browser.close().await.unwrap();
    assert!(!process_alive(u64::from(driver)));
}

#[tokio::test]
async fn a_missing_driver_fails_saying_what_to_install() {
    let err = Browser::builder()
        .with_chromedriver("/nonexistent/chromedriver")
        .start()
        .await
        .unwrap_err();
    let message = err.to_string();
    eprintln!("{message}");
    assert!(
        matches!(
            err,
            BrowserError::Missing {
                program: "chromedriver",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(message.contains("/nonexistent/chromedriver"), "{message}");
    assert!(
        message.contains("install Debian's chromium and chromium-driver (scripts/test.sh does)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_browser_fails_saying_what_to_install() {
    let err = Browser::builder()
        .with_chromium("/nonexistent/chromium")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BrowserError::Missing {
                program: "chromium",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("install Debian's chromium"),
        "{err}"
    );
}
