import { checkKubernetesVersionSupport } from '#services';
import { services } from './services.ts';

/** Scheduled daily: tells clusters on a Kubernetes minor near or past its end of life, through conditions and events. */
export const handler = () => checkKubernetesVersionSupport(services);
