// Tensor bookkeeping for tests: models a test creates are disposed after it, so tensor counts stay flat.
import { afterEach } from 'vitest';
import type { tf } from '../../src/tf.js';

/**
 * Registers an afterEach hook that disposes every model passed to the returned `track` (which returns the model,
 * so it wraps a creation in place). Call once at the top of a test file.
 */
export function trackModels(): (model: tf.LayersModel) => tf.LayersModel {
  const models: tf.LayersModel[] = [];
  afterEach(() => {
    models.splice(0).forEach((model) => model.dispose());
  });
  return (model) => {
    models.push(model);
    return model;
  };
}
