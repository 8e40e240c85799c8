//! The demo app of the Docker backend's images: answers every request with its image id;
//! see `immutable_local::demo`. The same program as `immutable-local`'s `immutable-demo-app`,
//! built by this crate so its tests find it (`CARGO_BIN_EXE_immutable-docker-demo-app`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    immutable_local::demo::run("immutable-docker-demo-app").await
}
