//! The engine's loop with the real evaluator, real Nix and the real local provider: what
//! the scheduler's unit tests decide, seen through `Engine`'s entry points.

use nixops4_core::ResourcePath;
use nixops4_core::engine::{Engine, EngineOptions};
use nixops4_core::error::EngineErrorKind;
use nixops4_core::{EvalOptions, plan::Plan};
use nixops4_tests::{TestEnv, binary};

use serde_json::Map;

async fn engine(env: &TestEnv) -> Engine {
    let mut options = EngineOptions::new(env.dir(), "default");
    options.local_provider = Some(binary("nixops4-resources-local"));
    options.eval = EvalOptions {
        program: Some(binary("nixops4-eval")),
        nix_command: std::env::var("NIXOPS4_TEST_NIX").ok(),
        ..EvalOptions::default()
    };
    Engine::start(options).await.expect("the engine starts")
}

fn problems(plan: &Plan) -> Vec<String> {
    plan.problems
        .iter()
        .map(|p| format!("{}: {}", p.resource, p.message))
        .collect()
}

#[tokio::test]
async fn a_plan_shows_each_cycle_and_an_apply_applies_what_is_outside_it() {
    let env = TestEnv::new();
    let fixture = nixops4_tests::repository_root().join("tests/fixtures/eval/cycle/flake.nix");
    env.write("flake.nix", &std::fs::read_to_string(fixture).unwrap());
    let engine = engine(&env).await;
    let plan = engine.plan().await.unwrap();
    assert_eq!(
        problems(&plan),
        [
            "a: dependency cycle: a → b → c → a",
            "b: dependency cycle: a → b → c → a",
            "c: dependency cycle: a → b → c → a",
            "waitsOnCycle: needs the outputs of a, which cannot be evaluated",
        ]
    );
    let planned: Vec<String> = plan
        .resources
        .iter()
        .map(|r| r.resource.to_string())
        .collect();
    assert_eq!(planned, ["free"]);

    let report = engine.apply(&[], |_| Ok(true)).await.unwrap().unwrap();
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|(path, error)| format!("{path}: {error}"))
        .collect();
    assert_eq!(
        failed,
        [
            "a: dependency cycle: a → b → c → a",
            "b: dependency cycle: a → b → c → a",
            "c: dependency cycle: a → b → c → a",
        ]
    );
    assert_eq!(
        report
            .skipped
            .get(&ResourcePath::parse_dotted("waitsOnCycle"))
            .map(String::as_str),
        Some("needs the outputs of a")
    );
    assert_eq!(report.applied.len(), 1);
    assert_eq!(env.read("free").as_deref(), Some("free"));
    engine.shutdown().await;
}

/// A path with no segment names no resource; the language server can send one. It is
/// refused before the state is locked (the lock file would be created).
#[tokio::test]
async fn an_empty_resource_path_is_refused_before_the_state_is_locked() {
    let env = TestEnv::new();
    env.write_deployment(r#"      resources.a = { type = "local.file"; inputs = { name = "a"; contents = "A"; }; };"#);
    let engine = engine(&env).await;
    let empty = ResourcePath(vec![]);
    let errors = [
        engine
            .run_operation(&empty, "backup", Map::new())
            .await
            .map(drop)
            .unwrap_err(),
        engine
            .apply(std::slice::from_ref(&empty), |_| Ok(true))
            .await
            .map(drop)
            .unwrap_err(),
        engine
            .destroy(std::slice::from_ref(&empty))
            .await
            .map(drop)
            .unwrap_err(),
        engine.state_remove(&empty).await.unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.kind, EngineErrorKind::Usage, "{error}");
        assert_eq!(error.message, "an empty resource path names no resource");
    }
    assert!(
        !env.dir().join(".nixops4").exists(),
        "nothing was locked or created"
    );
    engine.shutdown().await;
}
