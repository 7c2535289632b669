// NixOps4's additions to LSP, as nixops4-lsp speaks them: generated from
// lsp/server/src/lsp_ext.rs by its test (`cargo test -p nixops4-lsp lsp_ext`). Do not edit;
// change the Rust types and run the test with UPDATE_EXPECT=1.
import * as lc from 'vscode-languageclient/node';

export const plan = new lc.RequestType<PlanParams, PlanResult, void>('nixops4/plan');
export const documentText = new lc.RequestType<DocumentTextParams, DocumentText | null, void>('nixops4/documentText');
export const planChanged = new lc.NotificationType<PlanChangedParams>('nixops4/planChanged');

/** The commands of `workspace/executeCommand`; each takes one `CommandArguments`. */
export const commands = {
  apply: 'nixops4.apply',
  destroy: 'nixops4.destroy',
  refresh: 'nixops4.refresh',
  runOperation: 'nixops4.runOperation',
  plan: 'nixops4.plan',
  runScript: 'nixops4.runScript',
} as const;

/** What each command returns. */
export interface CommandResults {
  'nixops4.apply': ApplyResult;
  'nixops4.destroy': DestroyResult;
  'nixops4.refresh': RefreshResult;
  'nixops4.runOperation': OperationResult;
  'nixops4.plan': PlanResult;
  'nixops4.runScript': ScriptResult;
}

export type Action = 'create' | 'update' | 'replace' | 'delete' | 'noChange' | 'recreate' | 'forget';

/**
 * What `nixops4.apply` returns: what was done, or `{ "applied": false }` when the user
 * declined.
 */
export type ApplyResult = JobReport | { applied: boolean };

export interface Change {
  /** Absent: the input is removed. */
  after?: unknown;
  /** Absent: the input is new. */
  before?: unknown;
  /** The provider cannot change this input in place. */
  forcesReplacement: boolean;
  input: string;
}

/** The one argument of every command: the document it is about, and what to act on. */
export interface CommandArguments {
  /** `nixops4.runOperation`: the operation's arguments. */
  arguments?: Record<string, unknown>;
  /** The client asked the user already: do not ask again. */
  confirmed?: boolean;
  /** `nixops4.runOperation`: which operation; absent: the server asks. */
  operation?: string | null;
  /** `nixops4.runScript`: which script, by path (`["backup"]`). */
  script?: Target | null;
  /** `nixops4.runScript`: arguments for the script, after its declared ones. */
  scriptArgs?: string[];
  /** Resources to act on (and, for apply, what they depend on); none: the whole deployment. */
  targets?: Target[];
  /** A document of the deployment. */
  uri: string;
}

/**
 * What `nixops4.destroy` returns: what was done, or `{ "destroyed": false }` when the
 * user declined.
 */
export type DestroyResult = JobReport | { destroyed: boolean };

export interface DocumentText {
  /** Whether the server's line starts, by which it reads positions, are this text's. */
  analysed: boolean;
  text: string;
  version: number;
}

export interface DocumentTextParams {
  uri: string;
}

/** What an apply or destroy did, resources keyed by their dotted path. */
export interface JobReport {
  applied: Record<string, Action>;
  failed: Record<string, string>;
  /** Cancelled: nothing new was started after that, what ran is recorded. */
  interrupted: boolean;
  skipped: Record<string, string>;
  unchanged: number;
}

/** What `nixops4.runOperation` returns. */
export interface OperationResult {
  /** Whether it ran (not when the user declined or chose none). */
  ran: boolean;
  /** The operation's result, when it ran. */
  result?: unknown;
}

export interface Plan {
  /** The derivations an apply builds before it calls the providers that need them. */
  builds: PlannedBuild[];
  deployment: string;
  /** Identifies the expression and state the plan was made from. */
  fingerprint: string;
  /** Resources that could not be planned. */
  problems: Problem[];
  resources: PlannedResource[];
}

export interface PlanChangedParams {
  /** The deployment's name. */
  deployment: string;
  /** The directory of its flake. */
  flake: string;
}

export interface PlanParams {
  /** A document of the deployment. */
  uri: string;
}

/** The answer to `nixops4/plan` (and the result of the `nixops4.plan` command). */
export interface PlanResult {
  deployment: string;
  /** The directory of the deployment's flake. */
  flake: string;
  /** The custom operations of each resource the document declares, from its type's schema. */
  operations: ResourceOperations[];
  plan: Plan;
  /** The deployment's scripts (`nixops4.runScript`), by path: `["backup"]`. */
  scripts: string[][];
  summary: Summary;
  /**
   * The summary as every client shows it: `+2 ~1 -/+0 -0`, with `, 1 to build` when
   * the apply builds derivations first.
   */
  summaryText: string;
}

/** A derivation an apply builds, and the resources that need it. */
export interface PlannedBuild {
  /** `/nix/store/<hash>-<name>.drv`. */
  derivation: string;
  /** `<name>`. */
  name: string;
  /** Their paths: `["host", "key"]`. */
  resources: string[][];
}

export interface PlannedResource {
  action: Action;
  /** Input by input, for updates and replacements. */
  changes: Change[];
  /** Whether the inputs are known now; if not, they wait on `waitingFor`. */
  inputsKnown: boolean;
  /**
   * What happens to it, as every client shows it: `+ create`, `~ update: contents`,
   * `-/+ replace: name`, `- delete`, `no changes`, with `, waiting for resources.a`.
   */
  label: string;
  /** Where the resource is declared, when it still is. */
  position?: SourcePosition | null;
  /** Its path: `["host", "key"]`. */
  resource: string[];
  type: string;
  waitingFor: string[][];
}

/** A resource whose evaluation failed, or that waits on one that did. */
export interface Problem {
  message: string;
  position?: SourcePosition | null;
  resource: string[];
}

/** What `nixops4.refresh` returns. */
export interface RefreshResult {
  /** Resources whose outputs changed outside NixOps4. */
  changed: string[][];
  failed: [string[], string][];
  /** Resources that no longer exist; their records are removed. */
  gone: string[][];
  unchanged: number;
  /** Resources whose provider cannot read them. */
  unreadable: string[][];
}

export interface ResourceOperations {
  operations: string[];
  resource: string[];
}

/** What `nixops4.runScript` returns. */
export interface ScriptResult {
  /** The script's exit code; absent when a signal ended it (cancelled, say). */
  exitCode?: number | null;
}

/** A place in a file of the flake, as Nix reports it (1-based). */
export interface SourcePosition {
  column: number;
  /** Relative to the flake's directory. */
  file: string;
  line: number;
}

/**
 * How many resources each kind of change touches. Resources created again count as
 * created, and those forgotten as deleted; their labels say which.
 */
export interface Summary {
  create: number;
  delete: number;
  replace: number;
  unchanged: number;
  update: number;
}

/**
 * A resource's (or a script's) path, `["host", "key"]`: a non-empty list of non-empty
 * names. Anything else is refused when the command's argument is read, before any work
 * starts.
 */
export type Target = string[];
