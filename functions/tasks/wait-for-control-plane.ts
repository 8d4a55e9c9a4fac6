import { waitForControlPlaneStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => waitForControlPlaneStep(services, event);
