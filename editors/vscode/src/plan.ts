// How a plan from the server shows in the status bar and the plan view. The server says
// what happens to each resource (`label`) and sums the plan up (`summaryText`), the same for
// every client; this only arranges it. Pure: no VS Code API, so the unit tests run it under
// plain Node.
import type { PlanResult, ResourceOperations, Summary } from './lsp_ext';

/** `host.key`; names that need it are quoted as in Nix. */
export function dotted(path: string[]): string {
  return path.map((name) => (/^[A-Za-z_][A-Za-z0-9_'-]*$/.test(name) ? name : JSON.stringify(name))).join('.');
}

/** Whether anything would change. */
export function hasChanges(summary: Summary): boolean {
  return summary.create + summary.update + summary.replace + summary.delete > 0;
}

/** The status bar item's text and tooltip. */
export function status(result: PlanResult): { text: string; tooltip: string } {
  return {
    text: `$(rocket) NixOps4 ${result.summaryText}`,
    tooltip: hasChanges(result.summary)
      ? `Deployment ${result.deployment} has changes to apply: show the plan`
      : `Deployment ${result.deployment} is up to date`,
  };
}

export interface Row {
  label: string;
  description: string;
  tooltip?: string;
  /** The resource's path. */
  path: string[];
}

/** The plan view's rows: each resource with what happens to it, then what cannot be planned. */
export function rows(result: PlanResult): Row[] {
  const planned = result.plan.resources.map((resource) => ({
    label: dotted(resource.resource),
    description: resource.label,
    tooltip: `${resource.type}: ${resource.label}`,
    path: resource.resource,
  }));
  const problems = result.plan.problems.map((problem) => ({
    label: dotted(problem.resource),
    description: `cannot be evaluated: ${problem.message}`,
    path: problem.resource,
  }));
  return [...planned, ...problems];
}

/** The operations a resource offers, by its path. */
export function operationsOf(operations: ResourceOperations[], resource: string[]): string[] {
  const found = operations.find((entry) => entry.resource.join('\u0000') === resource.join('\u0000'));
  return found ? found.operations : [];
}
