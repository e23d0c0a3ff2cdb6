// A full training step of a tiny tutorial ResNet gives the same loss and gradients on wasm as on cpu.
import { beforeAll, describe, it } from 'vitest';
import { loadBothBackends } from '../support/backends.js';
import { expectStepMatchesCpu } from '../support/resnet-step.js';

describe('tiny ResNet training step on wasm', () => {
  beforeAll(loadBothBackends);

  // Gradients within 5e-4 of their largest magnitude: float32 sums in another order (XNNPACK's threads) have been
  // seen 1.2e-4 apart on a loaded machine; a wrong kernel is off by the order of the gradient itself.
  it('matches cpu in loss and every gradient', () => expectStepMatchesCpu('wasm', 1e-5, 5e-4));
});
