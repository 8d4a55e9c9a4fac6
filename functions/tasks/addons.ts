import { addonsStep, networkStep, verifyStep } from '#steps';
import { step } from './services.ts';

/**
 * The steps that install the add-ons and verify the cluster against them: three Lambda functions
 * (`functions/tasks/addons.<export>`) with this module as their code (all carry the add-on manifests and their
 * validators), so one bundle serves them.
 */
export const network = step(networkStep);
export const addons = step(addonsStep);
export const verify = step(verifyStep);
