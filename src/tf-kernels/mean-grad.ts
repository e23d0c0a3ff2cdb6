// A cheaper gradient for Mean on wasm. tfjs-core's builds a full-size tensor of ones in JS (makeOnesTypedArray,
// then a copy into the heap), multiplies and divides by it: three full passes plus a JS allocation for each of
// the two means of every training-mode batch norm (tf.moments). Broadcasting dy / count with Tile (a block copy
// here) gives the same values in one pass. Registered for all backends; the original runs off wasm.
import { tf } from '../tf.js';

export function makeMeanGradConfig(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== 'wasm' || Array.isArray(dy)) return original.gradFunc(dy, saved, attrs);
      const [x] = saved;
      const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
      const kept = x.shape.map((size, i) => (axes.includes(i) ? 1 : size));
      const reps = x.shape.map((size, i) => (axes.includes(i) ? size : 1));
      const count = axes.reduce((product, axis) => product * x.shape[axis], 1);
      return { x: () => tf.tile(tf.reshape(tf.div(dy, count), kept), reps) };
    },
  };
}
