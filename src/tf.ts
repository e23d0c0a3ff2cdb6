// The one module that imports TensorFlow.js. Everything else imports `tf` from here; the backend is chosen in
// src/backends/select.ts.
import * as tf from '@tensorflow/tfjs';

export { tf };
