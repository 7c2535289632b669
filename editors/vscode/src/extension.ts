// The NixOps4 extension: starts nixops4-lsp (found by ./server) with the workspace's trust,
// restarts it when trust is granted, and offers the commands, the plan view and a status
// bar item with the plan's summary. A script (from its lens or "Run Script") runs in the
// server; what it prints comes as log messages to the NixOps4 output channel, shown then. Lenses, confirmations and progress come from the server
// through vscode-languageclient; this file asks for the plan whenever the server says it
// changed (nixops4/planChanged) and runs the server's commands (./lsp_ext, generated from
// the server's types).
import * as vscode from 'vscode';
import { ExecuteCommandRequest, LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';

import { CommandArguments, CommandResults, PlanResult, commands, plan, planChanged } from './lsp_ext';
import { dotted, operationsOf, rows, status as statusOf } from './plan';
import { findServer, serverVersion } from './server';

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;
let status: vscode.StatusBarItem;
let planView: PlanView;

/** The plan view: the resources of the latest plan, with what would happen to each. */
class PlanView implements vscode.TreeDataProvider<vscode.TreeItem> {
  private changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private latest: PlanResult | undefined;

  show(result: PlanResult | undefined): void {
    this.latest = result;
    this.changed.fire();
  }

  get plan(): PlanResult | undefined {
    return this.latest;
  }

  getTreeItem(item: vscode.TreeItem): vscode.TreeItem {
    return item;
  }

  getChildren(): vscode.TreeItem[] {
    if (!this.latest) {
      return [new vscode.TreeItem('No plan yet: save a deployment or run "NixOps4: Plan"')];
    }
    return rows(this.latest).map((row) => {
      const item = new vscode.TreeItem(row.label);
      item.description = row.description;
      item.tooltip = row.tooltip;
      return item;
    });
  }
}

function activeNixDocument(): vscode.Uri | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor && editor.document.languageId === 'nix') {
    return editor.document.uri;
  }
  return vscode.workspace.textDocuments.find((document) => document.languageId === 'nix')?.uri;
}

async function startServer(context: vscode.ExtensionContext): Promise<void> {
  const settings = vscode.workspace.getConfiguration('nixops4');
  const found = findServer(settings.get<string>('server.path', ''), context.extensionPath, process.env.PATH ?? '');
  if ('error' in found) {
    output.appendLine(found.error);
    void vscode.window.showErrorMessage(`NixOps4: ${found.error}`, 'Open Settings').then((choice) => {
      if (choice) {
        void vscode.commands.executeCommand('workbench.action.openSettings', 'nixops4.server.path');
      }
    });
    return;
  }
  try {
    output.appendLine(`${await serverVersion(found.path)} (${found.path}, from ${found.source})`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output.appendLine(message);
    void vscode.window.showErrorMessage(`NixOps4: the server cannot start: ${message}`);
    return;
  }
  const serverOptions: ServerOptions = { command: found.path, args: ['--stdio'] };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'nix' }],
    initializationOptions: {
      trusted: vscode.workspace.isTrusted,
      planOnSave: settings.get<boolean>('planOnSave', true),
      parallelism: settings.get<number>('parallelism', 10),
    },
    outputChannel: output,
    middleware: {
      // A script's output comes to the output channel: show it, also for a lens's run.
      executeCommand: (command, args, next) => {
        if (command === commands.runScript) {
          output.show(true);
        }
        return next(command, args);
      },
    },
  };
  client = new LanguageClient('nixops4', 'NixOps4', serverOptions, clientOptions);
  // Sent once the new plan exists (after a save, an apply, ...): show that one.
  client.onNotification(planChanged, () => void refreshPlan());
  await client.start();
}

async function restartServer(context: vscode.ExtensionContext): Promise<void> {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
  await startServer(context);
}

async function refreshPlan(): Promise<PlanResult | undefined> {
  const uri = activeNixDocument();
  if (!client || !uri || !vscode.workspace.isTrusted) {
    return undefined;
  }
  try {
    const result = await client.sendRequest(plan, { uri: uri.toString() });
    planView.show(result);
    const shown = statusOf(result);
    status.text = shown.text;
    status.tooltip = shown.tooltip;
    status.show();
    return result;
  } catch (error) {
    output.appendLine(`plan: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/** Runs one of the server's commands on the active deployment (the server then says
 * that the plan changed). */
async function serverCommand<C extends keyof CommandResults>(
  command: C,
  argument: Omit<CommandArguments, 'uri'>,
): Promise<CommandResults[C] | undefined> {
  const uri = activeNixDocument();
  if (!client || !uri) {
    void vscode.window.showWarningMessage('NixOps4: open a deployment (a .nix file in a flake) first.');
    return undefined;
  }
  const full: CommandArguments = { ...argument, uri: uri.toString() };
  return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [full] });
}

/** Asks which resource of the latest plan to act on. */
async function pickResource(placeHolder: string): Promise<string[] | undefined> {
  const result = planView.plan ?? (await refreshPlan());
  if (!result) {
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    result.plan.resources.map((planned) => ({
      label: dotted(planned.resource),
      description: planned.label,
      path: planned.resource,
    })),
    { placeHolder },
  );
  return picked?.path;
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('NixOps4');
  status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left);
  status.command = 'nixops4.showPlan';
  planView = new PlanView();
  context.subscriptions.push(
    output,
    status,
    vscode.window.registerTreeDataProvider('nixops4.plan', planView),
    vscode.workspace.onDidGrantWorkspaceTrust(() => restartServer(context)),
    vscode.commands.registerCommand('nixops4.showPlan', async () => {
      await refreshPlan();
      await vscode.commands.executeCommand('nixops4.plan.focus');
    }),
    vscode.commands.registerCommand('nixops4.applyDeployment', () => serverCommand(commands.apply, {})),
    vscode.commands.registerCommand('nixops4.applyResource', async () => {
      const resource = await pickResource('Apply which resource (and what it depends on)?');
      return resource && serverCommand(commands.apply, { targets: [resource] });
    }),
    vscode.commands.registerCommand('nixops4.destroyResource', async () => {
      const resource = await pickResource('Destroy which resource (and what depends on it)?');
      if (!resource) {
        return undefined;
      }
      const sure = await vscode.window.showWarningMessage(
        `Destroy ${dotted(resource)} and every resource that depends on it?`,
        { modal: true },
        'Destroy',
      );
      return sure === 'Destroy' && serverCommand(commands.destroy, { targets: [resource], confirmed: true });
    }),
    vscode.commands.registerCommand('nixops4.runOperationOnResource', async () => {
      const resource = await pickResource('Run an operation on which resource?');
      if (!resource) {
        return undefined;
      }
      const offered = operationsOf(planView.plan?.operations ?? [], resource);
      if (offered.length === 0) {
        void vscode.window.showInformationMessage(`NixOps4: ${dotted(resource)} has no operations.`);
        return undefined;
      }
      const operation = await vscode.window.showQuickPick(offered, { placeHolder: `Run which operation on ${dotted(resource)}?` });
      return operation && serverCommand(commands.runOperation, { targets: [resource], operation });
    }),
    vscode.commands.registerCommand('nixops4.refreshState', () => serverCommand(commands.refresh, {})),
    vscode.commands.registerCommand('nixops4.runDeploymentScript', async () => {
      const result = planView.plan ?? (await refreshPlan());
      if (!result) {
        return undefined;
      }
      if (result.scripts.length === 0) {
        void vscode.window.showInformationMessage(`NixOps4: deployment ${result.deployment} has no scripts.`);
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(
        result.scripts.map((script) => ({ label: dotted(script), path: script })),
        { placeHolder: 'Run which script?' },
      );
      if (!picked) {
        return undefined;
      }
      const typed = await vscode.window.showInputBox({
        prompt: `Arguments for ${picked.label}, separated by spaces (none: Enter)`,
      });
      if (typed === undefined) {
        return undefined;
      }
      const scriptArgs = typed.split(/\s+/).filter((word) => word !== '');
      return serverCommand(commands.runScript, { script: picked.path, scriptArgs });
    }),
    vscode.commands.registerCommand('nixops4.restartServer', () => restartServer(context)),
  );
  await startServer(context);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
