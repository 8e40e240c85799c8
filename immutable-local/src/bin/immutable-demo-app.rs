//! The demo app: answers every request with its image id; see `immutable_local::demo`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    immutable_local::demo::run("immutable-demo-app").await
}
