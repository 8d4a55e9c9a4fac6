import { addonsStep, verifyStep } from '#steps';
import { step } from './services.ts';

/**
 * The steps that install the add-ons and verify the cluster against them: two Lambda functions
 * (`functions/tasks/addons.<export>`) with this module as their code (both carry the add-on manifests and their
 * validators), so one bundle serves both.
 */
export const addons = step(addonsStep);
export const verify = step(verifyStep);
