import { readFileSync, writeFileSync } from 'node:fs';
import { newApp, openApiDocument } from '#api';
import { loadConfig } from '../functions/wiring/config.ts';
import { createServices } from '../functions/wiring/services.ts';

/**
 * Writes openapi/openapi.json from the routes, or (check) fails when the
 * committed file differs from what the routes generate. Building the app
 * touches no AWS service, so placeholder configuration is enough.
 */
const target = new URL('../openapi/openapi.json', import.meta.url);
const services = createServices(
  loadConfig({
    KILN_PROVISION_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-provision',
    KILN_DEPROVISION_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-deprovision',
    KILN_UPDATE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-update',
    KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-rotate-encryption-key',
    KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-remediate-node',
    KILN_SEALING_KEY_ID: 'alias/kiln',
    KILN_LOG_LEVEL: 'silent',
  }),
);
const generated = `${JSON.stringify(openApiDocument(newApp(services)), null, 2)}\n`;

if (process.argv[2] === 'check') {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    // a missing file is drift too
  }
  if (committed !== generated) {
    process.stderr.write('openapi/openapi.json is out of date with the routes: run `npm run openapi` and commit the result.\n');
    process.exit(1);
  }
  process.stdout.write('openapi/openapi.json matches the routes.\n');
} else {
  writeFileSync(target, generated);
  process.stdout.write(`wrote ${target.pathname}\n`);
}
