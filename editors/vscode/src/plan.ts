// How a plan reads in the status bar and the plan view. Pure: no VS Code API, so the unit
// tests run it under plain Node.
import { PlannedResource, ResourceOperations, Summary } from './protocol';

/** `+2 ~1 -/+0 -0`. */
export function summaryText(summary: Summary): string {
  return `+${summary.create} ~${summary.update} -/+${summary.replace} -${summary.delete}`;
}

/** `host.key`; names that need it are quoted as in Nix. */
export function dotted(path: string[]): string {
  return path.map((name) => (/^[A-Za-z_][A-Za-z0-9_'-]*$/.test(name) ? name : JSON.stringify(name))).join('.');
}

/** `+ create`, `~ update: contents, mode`, `-/+ replace: name`, `- delete`, `no changes`. */
export function resourceLabel(planned: PlannedResource): string {
  const inputs = (onlyReplacing: boolean) =>
    planned.changes
      .filter((change) => !onlyReplacing || change.forcesReplacement)
      .map((change) => change.input)
      .join(', ');
  const listed = (verb: string, names: string) => (names ? `${verb}: ${names}` : verb);
  let text: string;
  switch (planned.action) {
    case 'create':
      text = '+ create';
      break;
    case 'update':
      text = listed('~ update', inputs(false));
      break;
    case 'replace':
      text = listed('-/+ replace', inputs(true));
      break;
    case 'delete':
      text = '- delete';
      break;
    default:
      text = 'no changes';
  }
  if (!planned.inputsKnown && planned.waitingFor.length > 0) {
    text += `, waiting for ${planned.waitingFor.map((path) => `resources.${dotted(path)}`).join(', ')}`;
  }
  return text;
}

/** Whether anything would change. */
export function hasChanges(summary: Summary): boolean {
  return summary.create + summary.update + summary.replace + summary.delete > 0;
}

/** The operations a resource offers, by its path. */
export function operationsOf(operations: ResourceOperations[], resource: string[]): string[] {
  const found = operations.find((entry) => entry.resource.join('\u0000') === resource.join('\u0000'));
  return found ? found.operations : [];
}
