import { awaitReplacementStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => awaitReplacementStep(services, event);
