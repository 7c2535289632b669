//! The Neovim plugin (editors/nvim) in real headless Neovim, on every version named in
//! `NIXOPS4_NVIM` (colon-separated paths; scripts/test.sh sets Debian's 0.7.2 and 0.11.4),
//! against the real `nixops4-lsp`, real Nix and the local provider: the server attaches,
//! diagnostics and completion arrive, a saved fix gets plan lenses (asked for when the
//! server sends `nixops4/planChanged`), `:NixOps4 apply` creates the resources, and
//! `:checkhealth nixops4` reports.

use std::process::Command;

use nixops4_tests::{TestEnv, binary, repository_root};
use serde_json::Value;

fn neovims() -> Vec<String> {
    match std::env::var("NIXOPS4_NVIM") {
        Ok(list) => list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("NIXOPS4_NVIM is not set: scripts/test.sh installs Neovim and sets it")
        }
        Err(_) => {
            eprintln!("skipped: set NIXOPS4_NVIM to Neovim binaries (scripts/test.sh does)");
            Vec::new()
        }
    }
}

#[test]
fn the_plugin_completes_diagnoses_plans_and_applies_on_every_neovim() {
    for nvim in neovims() {
        let env = TestEnv::new();
        env.write_deployment(
            r#"      resources.a = { type = "local.file"; inputs = { name = "a.txt"; contnets = "hello"; }; };"#,
        );
        let text = env.read("flake.nix").unwrap();
        let line = text.lines().position(|l| l.contains("contnets")).unwrap();
        let character = text.lines().nth(line).unwrap().find("contnets").unwrap();
        let result = env.dir().join("result.json");
        let home = tempfile::tempdir().unwrap();
        let plugin = repository_root().join("editors/nvim");
        let settings = format!(
            "lua vim.g.nixops4 = {{ cmd = {{ '{}' }}, trusted = true }}",
            binary("nixops4-lsp").display()
        );
        let status = Command::new("timeout")
            .arg("180")
            .arg(&nvim)
            .args(["--headless", "--clean", "-i", "NONE"])
            .args(["--cmd", &format!("set rtp^={}", plugin.display())])
            .args(["--cmd", &settings])
            .args([
                "-c",
                &format!("luafile {}", plugin.join("test/drive.lua").display()),
            ])
            .current_dir(env.dir())
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("NIXOPS4_FILE", env.dir().join("flake.nix"))
            .env("NIXOPS4_RESULT", &result)
            .env("NIXOPS4_COMPLETE_LINE", line.to_string())
            .env("NIXOPS4_COMPLETE_CHARACTER", character.to_string())
            .status()
            .expect("run neovim");
        assert!(status.success(), "{nvim} exited with {status}");
        let seen: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
        let version = seen["version"].as_str().unwrap_or_default().to_owned();
        assert_eq!(seen["error"], Value::Null, "Neovim {version}: {seen:#}");
        assert_eq!(seen["filetype"], "nix");
        assert!(
            seen["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d.as_str().unwrap().contains("has no input `contnets`")),
            "Neovim {version}: {seen:#}"
        );
        let completion: Vec<&str> = seen["completion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(
            completion.contains(&"contents") && completion.contains(&"mode"),
            "Neovim {version}: {completion:?}"
        );
        let lenses: Vec<&str> = seen["lenses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(lenses.contains(&"+ create"), "Neovim {version}: {lenses:?}");
        // The lenses came after the server said the plan changed, which the plugin kept.
        assert_eq!(
            seen["plan_changed"]["deployment"], "default",
            "Neovim {version}: {seen:#}"
        );
        assert_eq!(
            seen["report"]["applied"]["a"], "create",
            "Neovim {version}: {seen:#}"
        );
        assert_eq!(env.read("a.txt").as_deref(), Some("hello"));
        let health = seen["health"].as_str().unwrap();
        assert!(
            health.contains("nixops4-lsp 0."),
            "Neovim {version}: {health}"
        );
        assert!(
            health.contains("nix found") && health.contains("workspace trusted"),
            "Neovim {version}: {health}"
        );
    }
}
