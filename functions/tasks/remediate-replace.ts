import { replaceStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => replaceStep(services, event);
