import { pathToFileURL } from 'node:url';
import { AutomationDriver } from '#infra';
import { runInfrastructureContainer } from '#steps';
import { config, services } from './services.ts';

/** The Fargate task behind the Infrastructure and Destroy states: Pulumi through the Automation API. */
export async function handler(environment: Record<string, string | undefined>): Promise<void> {
  const { KILN_PULUMI_BACKEND_URL: backendUrl, KILN_PULUMI_SECRETS_PROVIDER: secretsProvider } = config;
  if (backendUrl === undefined || secretsProvider === undefined) {
    throw new Error('The infrastructure runner needs KILN_PULUMI_BACKEND_URL and KILN_PULUMI_SECRETS_PROVIDER.');
  }
  await runInfrastructureContainer(services, new AutomationDriver({ backendUrl, secretsProvider }), environment);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  handler(process.env).catch((error: unknown) => {
    services.log.error('infrastructure runner failed', { error });
    process.exitCode = 1;
  });
}
