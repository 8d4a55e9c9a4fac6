import { startDueKubernetesUpgrades } from '#services';
import { services } from './services.ts';

/** Scheduled every 15 minutes: upgrades clusters past their minor's end of life (autoUpdate on) inside their maintenance window. */
export const handler = () => startDueKubernetesUpgrades(services);
