//! The demo app of the Docker backend's images: answers every request with its image id;
//! see `immutable_local::demo`. The same program as `immutable-local`'s `immutable-demo-app`,
//! built by this crate so its tests find it (`CARGO_BIN_EXE_immutable-docker-demo-app`).

use std::process::ExitCode;

use immutable_local::demo::{DemoConfig, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match DemoConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("immutable-docker-demo-app: {e}");
            }
            return ExitCode::from(2);
        }
    };
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("immutable-docker-demo-app: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
