import { retireNodeStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => retireNodeStep(services, event);
