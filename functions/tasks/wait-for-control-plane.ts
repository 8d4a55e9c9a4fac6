import { waitForControlPlaneStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => waitForControlPlaneStep(services, event);
