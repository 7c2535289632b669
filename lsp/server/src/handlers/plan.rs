//! `nixops4/plan`: the latest plan of the document's deployment (made now if there is none
//! yet), with every resource's label and the summary as clients show them, and the custom
//! operations of the resources the document declares. Also the plan made shortly after an
//! open or a save ([`plan_later`]).

use std::sync::Arc;

use lsp_types::Uri;

use super::{Result, invalid_params, refused};
use crate::lsp_ext::{PlanParams, PlanResult};
use crate::runner::PlanStatus;
use crate::snapshot::Snapshot;
use crate::to_proto;

pub async fn plan(snap: Snapshot, params: PlanParams) -> Result<PlanResult> {
    if !snap.may_evaluate() {
        return Err(refused("the workspace is not trusted"));
    }
    let deployment = snap
        .deployment_of(&params.uri)
        .ok_or_else(|| invalid_params("the document is not open or not in a flake"))?;
    let made = match snap.runner().plan(&deployment) {
        Some(PlanStatus::Ready(plan)) => plan,
        _ => Arc::new(
            snap.runner()
                .plan_now(&deployment)
                .await
                .map_err(|e| refused(e.to_string()))?,
        ),
    };
    Ok(to_proto::plan_result(
        &deployment,
        &made,
        snap.resource_operations(&params.uri),
        &snap.scripts(&deployment),
    ))
}

/// After an open or a save (trusted workspaces, unless `planOnSave` is off): a plan
/// shortly, which the runner stores and the main loop then shows. A later save aborts a
/// plan still waiting or being made, with its evaluator.
pub fn plan_later(snap: &Snapshot, uri: &Uri) {
    let project = snap.project();
    if !project.trusted() || !project.settings().plan_on_save {
        return;
    }
    let Some(deployment) = snap.deployment_of(uri) else {
        return;
    };
    let session = snap.shared_session();
    let planned = deployment.clone();
    let task = tokio::spawn(async move { session.runner().plan_after_delay(&planned).await });
    snap.runner().supersede(deployment, task.abort_handle());
}
