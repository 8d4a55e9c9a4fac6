import { finishRemediationStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => finishRemediationStep(services, event);
