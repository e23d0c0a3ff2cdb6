// TensorFlow.js in the page: index.html loads the library's own browser build (vendor/tf.min.js, copied from
// node_modules) as a classic script, which defines the global `tf`. The type import compiles away; Node code
// keeps importing TensorFlow.js only through src/tf.ts.
type TensorFlow = typeof import('@tensorflow/tfjs');

export const tf = (globalThis as unknown as { tf: TensorFlow }).tf;
export type LayersModel = import('@tensorflow/tfjs').LayersModel;
