//! Repository rules, checked as tests: every Rust file says what it is for, tests are not
//! skipped silently, and crates depend on each other only along the allowed edges.

use std::path::{Path, PathBuf};

use nixops4_tests::repository_root;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | ".git" | "node_modules" | "out") {
                rust_files(&path, found);
            }
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&repository_root(), &mut files);
    assert!(files.len() > 10, "found too few Rust files: {files:?}");
    files
}

#[test]
fn every_rust_file_opens_with_a_doc_comment() {
    let missing: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            let first = text
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            !first.starts_with("//!")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` comment on their role:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_test_is_skipped_without_a_reason() {
    let mut offenders = Vec::new();
    for file in all_rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            // Written in two parts so that this file does not match itself.
            if line == concat!("#[", "ignore]") || line.starts_with(concat!("#[", "should_panic")) {
                offenders.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use #[ignore = \"why\"], and Result-returning tests instead of should_panic:\n{}",
        offenders.join("\n")
    );
}

/// Which workspace crates may depend on which (normal and build dependencies). Any crate
/// may dev-depend on `nixops4-tests`, which itself depends on no workspace crate, and on
/// what `DEV_EDGES` lists.
const ALLOWED_EDGES: &[(&str, &str)] = &[
    ("nixops4-provider-sdk", "nixops4-provider-protocol"),
    ("nixops4-resources-local", "nixops4-provider-sdk"),
    ("nixops4-resources-local", "nixops4-state-encryption"),
    ("nixops4-resources-s3", "nixops4-state-encryption"),
    ("nixops4-resources-testing", "nixops4-provider-sdk"),
    ("nixops4-resources-s3", "nixops4-provider-sdk"),
    ("nixops4-resources-ssh", "nixops4-provider-sdk"),
    ("nixops4-core", "nixops4-provider-protocol"),
    ("nixops4-core", "nixops4-eval"),
    ("nixops4-analysis", "nixops4-provider-protocol"),
    ("nixops4-lsp", "nixops4-analysis"),
    ("nixops4-lsp", "nixops4-core"),
    ("nixops4-lsp", "nixops4-provider-protocol"),
    ("nixops4-lsp", "nixops4-resources-local"),
    ("nixops4", "nixops4-core"),
];

/// Dev-dependencies beyond `nixops4-tests`: test code only, never the crate itself.
const DEV_EDGES: &[(&str, &str)] = &[
    // The analysis tests take the real local provider's schemas without running its binary.
    ("nixops4-analysis", "nixops4-resources-local"),
];

#[test]
fn crates_depend_only_along_allowed_edges() {
    let root = repository_root();
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    let mut violations = Vec::new();
    for member in members {
        let manifest: toml::Table =
            std::fs::read_to_string(root.join(member.as_str().unwrap()).join("Cargo.toml"))
                .unwrap()
                .parse()
                .unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        for (section, is_dev) in [
            ("dependencies", false),
            ("build-dependencies", false),
            ("dev-dependencies", true),
        ] {
            let Some(dependencies) = manifest.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for dependency in dependencies.keys().filter(|d| d.starts_with("nixops4")) {
                let allowed = if is_dev {
                    dependency == "nixops4-tests"
                        || ALLOWED_EDGES.contains(&(name.as_str(), dependency.as_str()))
                        || DEV_EDGES.contains(&(name.as_str(), dependency.as_str()))
                } else {
                    name != "nixops4-tests"
                        && ALLOWED_EDGES.contains(&(name.as_str(), dependency.as_str()))
                };
                if !allowed {
                    violations.push(format!("{name} -> {dependency} ({section})"));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependency edges not in ALLOWED_EDGES (or DEV_EDGES for dev-dependencies):\n{}",
        violations.join("\n")
    );
}

/// `nixops4-core` never prints: its root denies the print lints (which also catch
/// `eprint!` and `dbg!`), and no file reaches for the process's stdout or stderr.
#[test]
fn core_never_prints() {
    let root = repository_root();
    let lib = std::fs::read_to_string(root.join("core/src/lib.rs")).unwrap();
    assert!(
        lib.lines().any(|line| line.trim()
            == "#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]"),
        "core/src/lib.rs must deny clippy::print_stdout, clippy::print_stderr and clippy::dbg_macro"
    );
    let mut files = Vec::new();
    rust_files(&root.join("core/src"), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            ["io::stdout", "io::stderr"]
                .iter()
                .any(|stream| text.contains(stream))
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "nixops4-core writes to the terminal; return values or emit events instead:\n{}",
        offenders.join("\n")
    );
}
