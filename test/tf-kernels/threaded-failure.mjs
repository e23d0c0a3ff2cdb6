// Child process of threaded-wasm.test.ts: the threaded wasm build fails after its workers started (forced), and
// this process must then end by itself. Imports the built code (npm test builds dist/ first).
import { registerThreadedWasmBackend } from '../../dist/src/tf-kernels/threaded-wasm.js';

try {
  await registerThreadedWasmBackend(2, {
    afterStart: () => {
      throw new Error('forced failure after the workers started');
    },
  });
  console.log('registered');
} catch (err) {
  console.log(`failed: ${err.message}`);
}
