//! A headless Chromium for the dashboard's browser tests, driven through WebDriver.
//!
//! [`Browser::start`] runs Debian's `chromedriver` on a free loopback port (a child of the
//! test, in its own process group), waits for it to be ready, and opens a session of Debian's
//! `chromium` with a fresh profile. Dropping the [`Browser`] kills the driver and every
//! Chromium process it started, and deletes the profile.
//!
//! ```no_run
//! # async fn example() -> Result<(), immutable_testkit::browser::BrowserError> {
//! use std::time::Duration;
//! use immutable_testkit::browser::Browser;
//!
//! let browser = Browser::start().await?;
//! browser.client.goto("http://127.0.0.1:8080/").await?;
//! let title = browser.wait_for("h1", Duration::from_secs(5)).await?.text().await?;
//! browser.screenshot_to("target/dashboard.png").await?;
//! browser.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Assumptions
//! Chromium and its driver come from Debian's `chromium` and `chromium-driver` packages, which
//! share one version; `scripts/test.sh` installs them. `IMMUTABLE_CHROMIUM` and
//! `IMMUTABLE_CHROMEDRIVER` name other paths. A missing program is a [`BrowserError::Missing`]
//! that says what to install: the tests fail, they never skip.
//!
//! # Caveats
//! Chromium runs with `--no-sandbox` (tests run as root), and with its background networking
//! off: on a machine without a network, its own connections would be refused and slow it.

mod driver;
mod error;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use driver::Driver;
pub use error::{BrowserError, INSTALL};

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The switches of a headless Chromium run as root on a machine without a network.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// A Chromium session and the driver behind it; both end when it is dropped.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session: navigate, find, click, run scripts with it.
    pub client: fantoccini::Client,
    // Dropped in this order: the session handle, the driver (killing its process group), then
    // the profile and log directory.
    driver: Driver,
    scratch: tempfile::TempDir,
}

/// How to start a [`Browser`]: which programs, how long to wait, the window's size.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrowserBuilder {
    chromium: PathBuf,
    chromedriver: PathBuf,
    driver_ready: Duration,
    session_ready: Duration,
    window: (u32, u32),
}

impl Default for BrowserBuilder {
    fn default() -> Self {
        Self::from_env()
    }
}

impl BrowserBuilder {
    /// Debian's paths, or those `IMMUTABLE_CHROMIUM` and `IMMUTABLE_CHROMEDRIVER` name; 20 s
    /// for the driver to be ready, 60 s for the browser; a 1280 x 800 window.
    pub fn from_env() -> Self {
        let path = |var: &str, default: &str| {
            std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        BrowserBuilder {
            chromium: path("IMMUTABLE_CHROMIUM", CHROMIUM),
            chromedriver: path("IMMUTABLE_CHROMEDRIVER", CHROMEDRIVER),
            driver_ready: Duration::from_secs(20),
            session_ready: Duration::from_secs(60),
            window: (1280, 800),
        }
    }

    /// Runs this Chromium binary.
    pub fn with_chromium(mut self, path: impl Into<PathBuf>) -> Self {
        self.chromium = path.into();
        self
    }

    /// Runs this chromedriver binary (of the same version as the browser).
    pub fn with_chromedriver(mut self, path: impl Into<PathBuf>) -> Self {
        self.chromedriver = path.into();
        self
    }

    /// The size of the browser's window, so that screenshots have one size.
    pub fn with_window(mut self, width: u32, height: u32) -> Self {
        self.window = (width, height);
        self
    }

    /// Starts the driver and opens a session.
    ///
    /// # Errors
    /// [`BrowserError::Missing`] when a program is not where it is looked for;
    /// [`BrowserError::DriverNotReady`] or [`BrowserError::Session`] (with the driver's log)
    /// when the driver or the browser does not start in time.
    pub async fn start(self) -> Result<Browser, BrowserError> {
        for (program, path, env) in [
            ("chromedriver", &self.chromedriver, "IMMUTABLE_CHROMEDRIVER"),
            ("chromium", &self.chromium, "IMMUTABLE_CHROMIUM"),
        ] {
            if !is_executable(path) {
                return Err(BrowserError::Missing {
                    program,
                    path: path.clone(),
                    env,
                });
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix("immutable-browser.")
            .tempdir()
            .map_err(BrowserError::io("create a browser profile directory"))?;
        let driver = Driver::start(
            &self.chromedriver,
            scratch.path().join("chromedriver.log"),
            self.driver_ready,
        )
        .await?;
        let client = self
            .session(&driver, &scratch.path().join("profile"))
            .await?;
        Ok(Browser {
            client,
            driver,
            scratch,
        })
    }

    async fn session(
        &self,
        driver: &Driver,
        profile: &Path,
    ) -> Result<fantoccini::Client, BrowserError> {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", self.window.0, self.window.1));
        let capabilities = json!({
            "goog:chromeOptions": { "binary": self.chromium, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        // Plain HTTP to a driver on loopback: no TLS stack needed.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let connected =
            tokio::time::timeout(self.session_ready, builder.connect(&driver.url)).await;
        let reason = match connected {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no session after {:?}", self.session_ready),
        };
        Err(BrowserError::Session {
            reason,
            log: driver.log_tail(),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Browser {
    /// How to start one with other programs or settings; [`BrowserBuilder::from_env`].
    pub fn builder() -> BrowserBuilder {
        BrowserBuilder::from_env()
    }

    /// Starts Debian's Chromium through its driver, as [`BrowserBuilder::from_env`] says.
    ///
    /// # Errors
    /// As [`BrowserBuilder::start`].
    pub async fn start() -> Result<Browser, BrowserError> {
        Self::builder().start().await
    }

    /// Waits at most `at_most` for an element matching the CSS `selector`, and returns it.
    ///
    /// # Errors
    /// [`BrowserError::Timeout`] naming the selector; [`BrowserError::Command`] if the browser
    /// fails.
    pub async fn wait_for(
        &self,
        selector: &str,
        at_most: Duration,
    ) -> Result<Element, BrowserError> {
        self.client
            .wait()
            .at_most(at_most)
            .every(Duration::from_millis(25))
            .for_element(Locator::Css(selector))
            .await
            .map_err(|e| match e {
                CmdError::WaitTimeout => BrowserError::Timeout {
                    selector: selector.to_owned(),
                    waited: at_most,
                },
                e => BrowserError::Command(e),
            })
    }

    /// Writes a PNG of the window to `path`, creating its directory; returns its size in bytes.
    ///
    /// # Errors
    /// [`BrowserError::Command`] if the browser cannot take it, [`BrowserError::Io`] if it
    /// cannot be written.
    pub async fn screenshot_to(&self, path: impl AsRef<Path>) -> Result<usize, BrowserError> {
        let path = path.as_ref();
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(BrowserError::io(format!("create {}", dir.display())))?;
        }
        tokio::fs::write(path, &png)
            .await
            .map_err(BrowserError::io(format!("write {}", path.display())))?;
        Ok(png.len())
    }

    /// The driver's process id, which is also the id of the process group holding it and the
    /// browser.
    pub fn driver_pid(&self) -> u32 {
        self.driver.pid()
    }

    /// The directory holding the browser's profile and the driver's log, deleted on drop.
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// Ends the session (the browser quits), then stops the driver.
    ///
    /// # Errors
    /// [`BrowserError::Command`] if the driver did not end the session; the driver is
    /// stopped all the same.
    pub async fn close(self) -> Result<(), BrowserError> {
        self.client.clone().close().await?;
        Ok(())
    }
}
