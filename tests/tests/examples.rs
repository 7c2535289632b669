//! The examples under `examples/` run as documented, against the real binaries.

use std::path::{Path, PathBuf};

use nixops4_tests::{binary, repository_root};

/// `path` relative to `base`, when it lies under it (the default target directory does).
fn pathdiff(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_owned())
}
use serde_json::Value;

#[test]
fn local_files_example_creates_updates_and_deletes() {
    let out = tempfile::tempdir().unwrap();
    // Given as a relative path, as the README's command does.
    let provider = binary("nixops4-resources-local");
    let relative = pathdiff(&provider, &repository_root());
    let status = std::process::Command::new(repository_root().join("examples/local-files/run.sh"))
        .arg(&relative)
        .current_dir(repository_root())
        .env("NIXOPS4_EXAMPLE_OUT", out.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "examples/local-files/run.sh failed: {status}"
    );

    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    assert_eq!(
        read("site/index.html"),
        "<h1>Hello again from NixOps4</h1>\n"
    );
    assert_eq!(read("site/config.json"), "{\"port\": 8080}\n");
    assert!(
        !out.path().join("notes.txt").exists(),
        "the deleted resource's file is gone"
    );
    let backups = std::fs::read_dir(out.path().join("site"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("config.json.backup-")
        })
        .count();
    assert_eq!(backups, 1);

    let log = read("deployment.nixops4-state.jsonl");
    let events: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .skip(1)
        .map(|e| e["meta"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["create", "create", "create", "update", "destroy"]);
}

#[test]
fn hello_example_applies_and_converges() {
    let env = nixops4_tests::TestEnv::new();
    let source = repository_root().join("examples/hello/flake.nix");
    env.write("flake.nix", &std::fs::read_to_string(source).unwrap());
    env.run(&["apply"]).success();
    assert_eq!(
        env.read("out/greeting.txt").as_deref(),
        Some("Hello from NixOps4!\n")
    );
    let report = env.read("out/report.txt").unwrap();
    assert!(
        report.starts_with("greeting.txt has checksum ") && report.len() > 80,
        "{report}"
    );
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 3 resources up to date.\n"
    );
    assert_eq!(
        env.run(&["output", "report"]).success().stdout,
        "<flake>/out/report.txt\n"
    );
}
