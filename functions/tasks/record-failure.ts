import { recordFailureStep } from '#services';
import { services } from './services.ts';

export const handler = (event: unknown) => recordFailureStep(services, event);
