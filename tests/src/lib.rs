//! Shared support for tests that drive the project's real binaries.
//!
//! This crate depends on no workspace crate, so every crate may use it in its tests.
//! The helpers find the binaries beside the running test executable; build them first
//! (`cargo build --workspace --bins`, as `scripts/test.sh` does), since `cargo test`
//! builds only the binaries of packages that have integration tests.

pub mod age_key;
pub mod dropping_proxy;
pub mod garage;
pub mod lsp_client;
pub mod test_hosts;

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
        "{} is not built; run `cargo build --workspace --bins` (or scripts/test.sh) first",
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

/// The Nix command tests of the evaluator run: `NIXOPS4_TEST_NIX` (a program and leading
/// arguments; CI sets current Nix there), by default `nix`. Fails with an install hint
/// when it does not run.
pub fn nix_command() -> String {
    let command = std::env::var("NIXOPS4_TEST_NIX").unwrap_or_else(|_| "nix".to_owned());
    let program = command
        .split_whitespace()
        .next()
        .unwrap_or("nix")
        .to_owned();
    let found = std::process::Command::new(&program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{program}` is not available: install Nix (apt-get install -y nix-bin) or set NIXOPS4_TEST_NIX"
    );
    command
}

/// The nixpkgs `lib` directory that module-system tests evaluate with
/// (`NIXOPS4_NIXPKGS_LIB`), or `None` after saying that the test is skipped for want of one.
pub fn nixpkgs_lib() -> Option<String> {
    let Ok(lib) = std::env::var("NIXOPS4_NIXPKGS_LIB") else {
        eprintln!("skipped: no nixpkgs lib (set NIXOPS4_NIXPKGS_LIB to a nixpkgs `lib` directory)");
        return None;
    };
    assert!(
        std::path::Path::new(&lib).join("default.nix").exists(),
        "NIXOPS4_NIXPKGS_LIB={lib} is not a nixpkgs lib directory"
    );
    Some(lib)
}

/// A copy of a fixture flake of the evaluator's tests (`tests/fixtures/eval/<name>`, its
/// subdirectories included) in a temporary directory, with the Nix library beside it as
/// `nixops4-lib.nix`.
pub fn eval_fixture(name: &str) -> tempfile::TempDir {
    let root = repository_root();
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_tree(&root.join("tests/fixtures/eval").join(name), dir.path());
    std::fs::copy(root.join("nix/lib.nix"), dir.path().join("nixops4-lib.nix"))
        .expect("copy the Nix library");
    dir
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("the fixture") {
        let path = entry.expect("a fixture file").path();
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            std::fs::create_dir(&target).expect("a fixture directory");
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy a fixture file");
        }
    }
}

/// Makes `dir` a Git repository whose one commit holds `flake.nix` (nothing else is
/// tracked), as a user's flake in Git.
pub fn commit_flake_to_git(dir: &std::path::Path) {
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(dir)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} in {}", dir.display());
    };
    git(&["init", "-q"]);
    git(&["add", "flake.nix"]);
    git(&["commit", "-q", "-m", "a flake"]);
}

/// The workspace's programs that tests run.
const PROGRAMS: [&str; 6] = [
    "nixops4",
    "nixops4-eval",
    "nixops4-lsp",
    "nixops4-resources-local",
    "nixops4-resources-ssh",
    "nixops4-resources-testing",
];

/// Where [`TestEnv`] runs programs: on this machine with its Nix, or inside the root
/// directory `NIXOPS4_TEST_NIX_ROOT` names (a Debian root with current Nix, made by
/// `scripts/setup-current-nix.sh`), whose `/tmp` is this machine's: there the programs
/// are linked into a directory under the temporary directory and run with `chroot`, so
/// that the evaluator, `nix` and the providers all see that root's Nix store.
#[derive(Clone, Debug)]
enum Place {
    Here,
    Root { root: PathBuf, programs: PathBuf },
}

impl Place {
    fn current() -> &'static Place {
        static PLACE: std::sync::OnceLock<Place> = std::sync::OnceLock::new();
        PLACE.get_or_init(|| match std::env::var_os("NIXOPS4_TEST_NIX_ROOT") {
            None => Place::Here,
            Some(root) => Place::Root {
                root: PathBuf::from(root),
                programs: shared_programs(),
            },
        })
    }
}

/// Links (or copies) the programs into a directory under the temporary directory, one
/// per build directory, and returns it.
fn shared_programs() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let built = binary("nixops4");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    built.hash(&mut hasher);
    let dir = std::env::temp_dir().join(format!("nixops4-test-programs-{:x}", hasher.finish()));
    std::fs::create_dir_all(&dir).expect("create the shared programs directory");
    for name in PROGRAMS {
        let (from, to) = (binary(name), dir.join(name));
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(&from, &to)
            .or_else(|_| std::fs::copy(&from, &to).map(drop))
            .unwrap_or_else(|e| panic!("linking {} to {}: {e}", from.display(), to.display()));
    }
    dir
}

/// A flake in a temporary directory, and a pinned environment to run `nixops4` in it
/// (jj's TestEnv): a fresh HOME, no colour, a `NIX_CONFIG` of its own (no substituters,
/// no sandbox, so that test derivations may use the machine's tools). With
/// `NIXOPS4_TEST_NIX_ROOT` set, programs run inside that root ([`Place`]).
pub struct TestEnv {
    flake: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Default for TestEnv {
    fn default() -> TestEnv {
        TestEnv::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            flake: tempfile::tempdir().expect("a temporary directory"),
            home: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.flake.path()
    }

    /// Writes `flake.nix` with `nixops4Deployments.default` set to a deployment whose
    /// body (inside `{ resources, ... }: { ... }`) is `body`.
    pub fn write_deployment(&self, body: &str) {
        let flake = format!(
            "{{\n  outputs = {{ self }}: {{\n    nixops4Deployments.default = {{ resources, ... }}: {{\n{body}\n    }};\n  }};\n}}\n"
        );
        self.write("flake.nix", &flake);
    }

    pub fn write(&self, name: &str, contents: &str) {
        let path = self.dir().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the parent directory");
        }
        std::fs::write(path, contents).expect("write a test file");
    }

    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir().join(name)).ok()
    }

    /// `nixops4 <args>` in the flake's directory, ready to run or spawn.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        self.program("nixops4", args)
    }

    /// The path of one of the project's programs as the programs this environment runs
    /// see it (for a deployment that names one).
    pub fn program_path(&self, name: &str) -> PathBuf {
        match Place::current() {
            Place::Here => binary(name),
            Place::Root { programs, .. } => programs.join(name),
        }
    }

    /// Whether programs run inside the root of `NIXOPS4_TEST_NIX_ROOT`.
    pub fn in_root() -> bool {
        matches!(Place::current(), Place::Root { .. })
    }

    /// One of the project's programs with `args`, in the flake's directory, with the
    /// same clean environment as [`TestEnv::command`].
    pub fn program(&self, name: &str, args: &[&str]) -> std::process::Command {
        let mut nix_config = "substituters =\nsandbox = false\n".to_owned();
        let mut command = match Place::current() {
            Place::Here => {
                let mut command = std::process::Command::new(binary(name));
                command.args(args).current_dir(self.dir());
                command
            }
            Place::Root { root, programs } => {
                // As the wrapper of setup-current-nix.sh: root in a root needs no build users.
                nix_config.push_str("build-users-group =\n");
                let mut command = std::process::Command::new("chroot");
                command
                    .arg(root)
                    .args(["/usr/bin/env", "-C"])
                    .arg(self.dir())
                    .arg(programs.join(name))
                    .args(args);
                command
            }
        };
        self.pin_environment(&mut command, nix_config);
        command
    }

    /// A copy of one of the project's programs at `program`, run like [`TestEnv::run`]
    /// runs the built ones (on this machine, not inside a root).
    pub fn run_copy(&self, program: &std::path::Path, args: &[&str]) -> CommandOutput {
        let mut command = std::process::Command::new(program);
        command.args(args).current_dir(self.dir());
        self.pin_environment(&mut command, "substituters =\nsandbox = false\n".to_owned());
        self.output(command.output().expect("run a copied program"))
    }

    fn pin_environment(&self, command: &mut std::process::Command, nix_config: String) {
        command
            .env_clear()
            .env("NIX_CONFIG", nix_config)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .stdin(std::process::Stdio::null());
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            command.env("TMPDIR", tmp);
        }
    }

    pub fn run(&self, args: &[&str]) -> CommandOutput {
        self.run_program("nixops4", args)
    }

    pub fn run_program(&self, name: &str, args: &[&str]) -> CommandOutput {
        let output = self.program(name, args).output().expect("run a program");
        self.output(output)
    }

    /// `nixops4 <args>` with these environment variables added to the clean environment.
    pub fn run_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> CommandOutput {
        let mut command = self.command(args);
        command.envs(vars.iter().copied());
        self.output(command.output().expect("run nixops4"))
    }

    /// `nixops4 <args>` with `input` as its standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> CommandOutput {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nixops4");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(input.as_bytes()).expect("write to stdin");
        drop(stdin);
        self.output(child.wait_with_output().expect("run nixops4"))
    }

    /// The normalized output of a program that ran.
    pub fn output(&self, output: std::process::Output) -> CommandOutput {
        CommandOutput {
            stdout: self.normalize(&String::from_utf8_lossy(&output.stdout)),
            stderr: self.normalize(&String::from_utf8_lossy(&output.stderr)),
            status: output.status,
        }
    }

    /// Replaces what differs between runs: the temporary directory, process ids, times.
    pub fn normalize(&self, text: &str) -> String {
        let mut text = text.replace(&self.dir().display().to_string(), "<flake>");
        for (pattern, replacement) in [
            (
                r"\S+@\S+ \(process \d+, ([^)]*)\) since \S+",
                "<user>@<host> (process <pid>, ${1}) since <time>",
            ),
            (r"backup-\d{8}T\d{6}Z(-\d+)?", "backup-<time>"),
            (
                r#"("fingerprint": ?)"[0-9a-f]{64}""#,
                r#"${1}"<fingerprint>""#,
            ),
        ] {
            text = regex_lite::Regex::new(pattern)
                .expect("a valid pattern")
                .replace_all(&text, replacement)
                .into_owned();
        }
        text
    }
}

/// What a command printed and how it ended, shown as jj's tests show it.
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    pub status: std::process::ExitStatus,
}

impl CommandOutput {
    /// Asserts that the command succeeded.
    #[track_caller]
    pub fn success(self) -> CommandOutput {
        assert!(self.status.success(), "the command failed:\n{self}");
        self
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for CommandOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.stdout)?;
        if !self.stderr.is_empty() {
            write!(f, "------- stderr -------\n{}", self.stderr)?;
        }
        match self.status.code() {
            Some(0) => {}
            Some(code) => writeln!(f, "[exit status: {code}]")?,
            None => writeln!(f, "[killed by a signal]")?,
        }
        write!(f, "[EOF]")
    }
}
