import { recoverStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => recoverStep(services, event);
