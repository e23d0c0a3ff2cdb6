// A full training step of a tiny tutorial ResNet gives the same loss and gradients on wasm as on cpu.
import { beforeAll, describe, it } from 'vitest';
import { loadBothBackends } from './backends.js';
import { expectStepMatchesCpu } from './resnet-step.js';

describe('tiny ResNet training step on wasm', () => {
  beforeAll(loadBothBackends);

  it('matches cpu in loss and every gradient', () => expectStepMatchesCpu('wasm', 1e-5, 1e-4));
});
