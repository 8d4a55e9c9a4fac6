import { drainStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => drainStep(services, event);
