//! What the tests share: the demo app built into images, and plain HTTP on loopback.

use std::time::{Duration, Instant};

use bollard::Docker;
use immutable_docker::ScratchImage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The demo app (`immutable-docker-demo-app`): `image=<IMAGE_ID> instance=<INSTANCE_ID>` on
/// 127.0.0.1:`PORT`, `/health` 200, or 503 with `DEMO_UNHEALTHY=1`.
pub(crate) const DEMO_APP: &str = env!("CARGO_BIN_EXE_immutable-docker-demo-app");

/// The label on everything the tests make, whose value names the crate.
pub(crate) const TEST_LABEL: &str = "immutable.test";

/// The label naming the demo image's version.
pub(crate) const VERSION_LABEL: &str = "immutable.test.version";

/// The demo app built into a scratch image labelled [`TEST_LABEL`] and [`VERSION_LABEL`],
/// with `DEMO_UNHEALTHY=1` in its environment when `unhealthy`; its id.
///
/// The same version (and health) gives the same image, so each test names its own versions
/// (after itself): removing its images then never pulls one from under another test.
pub(crate) async fn demo_image(docker: &Docker, version: &str, unhealthy: bool) -> String {
    let mut image = ScratchImage::new(DEMO_APP)
        .label(TEST_LABEL, "immutable-docker")
        .label(VERSION_LABEL, version);
    if unhealthy {
        image = image.env("DEMO_UNHEALTHY", "1");
    }
    image
        .build(docker)
        .await
        .unwrap_or_else(|e| panic!("the demo image {version}: {e}"))
}

/// `GET http://127.0.0.1:{port}{path}`: the status and the body; `None` when nothing answers
/// within 2 s.
pub(crate) async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// [`get`] every 50 ms until something answers, at most 10 s.
pub(crate) async fn until_answered(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = get(port, path).await {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "nothing answered on 127.0.0.1:{port} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
