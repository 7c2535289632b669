//! What the evaluator's test files beside `evaluator.rs` share: a client of the real
//! `nixops4-eval` on the Nix under test, and resource paths written dotted.

use std::time::Duration;

use nixops4_eval::client::{EvalClient, EvalOptions};
use nixops4_eval::protocol::ResourcePath;
use nixops4_tests::nix_command;

pub async fn client() -> EvalClient {
    EvalClient::start(EvalOptions {
        program: Some(nixops4_tests::binary("nixops4-eval")),
        nix_command: Some(nix_command()),
        timeout: Some(Duration::from_secs(120)),
        log_sink: None,
    })
    .await
    .expect("start nixops4-eval")
}

pub fn path(dotted: &str) -> ResourcePath {
    ResourcePath::parse_dotted(dotted)
}
