// The server's custom requests and commands, typed as nixops4-lsp defines them
// (lsp/server/src/evaluated.rs): the plan JSON of `nixops4/plan`, and the argument every
// `nixops4.*` command takes.

export type Action = 'create' | 'update' | 'replace' | 'delete' | 'noChange';

export interface Change {
  input: string;
  forcesReplacement: boolean;
}

export interface PlannedResource {
  resource: string[];
  type: string;
  action: Action;
  changes: Change[];
  inputsKnown: boolean;
  waitingFor: string[][];
}

export interface Problem {
  resource: string[];
  message: string;
}

export interface Plan {
  deployment: string;
  resources: PlannedResource[];
  problems: Problem[];
  fingerprint: string;
}

export interface Summary {
  create: number;
  update: number;
  replace: number;
  delete: number;
}

/** The custom operations of a resource, from its type's schema. */
export interface ResourceOperations {
  resource: string[];
  operations: string[];
}

/** The answer to `nixops4/plan`. */
export interface PlanResult {
  deployment: string;
  flake: string;
  summary: Summary;
  plan: Plan;
  operations: ResourceOperations[];
}

export const planRequest = 'nixops4/plan';

/** The one argument of every server command. */
export interface CommandArguments {
  uri: string;
  targets?: string[][];
  operation?: string;
  arguments?: Record<string, unknown>;
  confirmed?: boolean;
}

export const serverCommands = {
  apply: 'nixops4.apply',
  destroy: 'nixops4.destroy',
  refresh: 'nixops4.refresh',
  runOperation: 'nixops4.runOperation',
  plan: 'nixops4.plan',
} as const;
