import { rebootStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => rebootStep(services, event);
