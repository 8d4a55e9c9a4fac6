/**
 * Validates every workflows/*.asl.json with asl-validator after rendering it
 * with example ARNs, the way sst.config.ts renders it with real ones.
 * Exits 1 when any definition is invalid or cannot be rendered.
 */
import { readdirSync } from 'node:fs';
import {
  exampleSubstitutions,
  isWorkflowName,
  renderWorkflow,
  workflowDefinitionProblems,
  workflowPlaceholders,
} from '#workflows';

const workflowsDir = new URL('../workflows/', import.meta.url);
const files = readdirSync(workflowsDir)
  .filter((file) => file.endsWith('.asl.json'))
  .sort();

let failed = false;
for (const file of files) {
  const name = file.slice(0, -'.asl.json'.length);
  const problems = checkWorkflow(name);
  if (problems.length === 0) {
    console.log(`ok   workflows/${file}`);
  } else {
    failed = true;
    console.log(`FAIL workflows/${file}: ${problems.join('; ')}`);
  }
}
if (files.length === 0) {
  failed = true;
  console.log('FAIL no workflows/*.asl.json found');
}
process.exitCode = failed ? 1 : 0;

function checkWorkflow(name: string): string[] {
  // A file that definitions.ts does not list would never be deployed.
  if (!isWorkflowName(name)) return [`not listed in WORKFLOW_NAMES (workflows/definitions.ts)`];
  try {
    const rendered = renderWorkflow(name, exampleSubstitutions(workflowPlaceholders(name)));
    return workflowDefinitionProblems(rendered);
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
}
