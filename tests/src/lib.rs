//! Shared support for tests that drive the project's real binaries.
//!
//! This crate depends on no workspace crate, so every crate may use it in its tests.
//! `cargo test --workspace` builds every binary before any test runs; the helpers find
//! them beside the running test executable.

use std::path::PathBuf;

/// The path of one of the workspace's binaries, built for the running test profile.
pub fn binary(name: &str) -> PathBuf {
    let test_executable = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = test_executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`, or `cargo build -p {name}` first",
        path.display()
    );
    path
}

/// The repository's root directory.
pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}
