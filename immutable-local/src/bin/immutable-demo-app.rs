//! The demo app: answers every request with its image id; see `immutable_local::demo`.

use std::process::ExitCode;

use immutable_local::demo::{DemoConfig, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match DemoConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("immutable-demo-app: {e}");
            }
            return ExitCode::from(2);
        }
    };
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("immutable-demo-app: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
