// An inference-only network made from a layers model, with the same probabilities in fewer passes over the data.
// Every inference-mode BatchNormalization is a per-channel multiply-add (s = gamma / sqrt(variance + epsilon),
// y = x * s + beta - mean * s). One that follows a convolution is folded into the convolution's kernel and bias
// (w' = w * s, b' = b * s + beta - mean * s); a ReLU after either becomes the fused op's activation; the add of a
// residual connection joins the convolution before it; and a batch norm after that add (the pre-activation one
// of the next module) is done as that convolution stores its outputs, which are kept as well when the next
// module's shortcut reads them. The tutorial's ResNet then runs as one op per convolution, with no pass of its
// own for any batch norm, ReLU or add (src/tf-kernels/inference-conv.ts). The ops are called directly, without
// the layers API's bookkeeping around every layer. The saved model is untouched: the network holds a copy of
// the folded weights made when it is built. A model with anything this does not know (other layers or settings,
// several inputs or outputs, shared layers) is not folded: the caller keeps the model itself.
import { tf } from '../tf.js';
import { inferenceConv2d } from '../tf-kernels/inference-conv.js';
import type { ImageClassifier } from './inference.js';

/** An inference-only copy of a model: what batchProbabilities needs, plus dispose() for the copied weights. */
export interface FoldedNetwork extends ImageClassifier {
  dispose(): void;
}

type Activation = 'linear' | 'relu';
type Pad = 'same' | 'valid';

/** One step of the network, producing one tensor from the tensors of its inputs. Weights as float64 values. */
type Op =
  | {
      kind: 'conv';
      /** [height, width, in, out] */
      kernelShape: [number, number, number, number];
      kernel: Float64Array;
      /** Per output channel; undefined: no bias. */
      bias?: Float64Array;
      strides: [number, number];
      pad: Pad;
      activation: Activation;
      /** A residual connection merged in: the node's second input is added to the sums. */
      residual: boolean;
      /** A batch norm after the residual connection, run as the outputs are stored (before the activation). */
      after?: { scale: Float64Array; shift: Float64Array };
    }
  /** y = x * scale + shift per channel (the last axis), then the activation: an inference-mode batch norm. */
  | { kind: 'affine'; scale: Float64Array; shift: Float64Array; activation: Activation; rank: number }
  | { kind: 'relu' }
  | { kind: 'softmax' }
  | { kind: 'add' }
  | { kind: 'avgPool'; poolSize: [number, number]; strides: [number, number]; pad: Pad }
  | { kind: 'flatten' }
  | {
      kind: 'dense';
      kernelShape: [number, number];
      kernel: Float64Array;
      bias?: Float64Array;
      activation: Activation;
      softmax: boolean;
    };

interface Node {
  op: Op;
  /** Ids of the symbolic tensors this node reads. */
  inputs: number[];
  /**
   * A convolution with a batch norm `after` whose sums are read elsewhere too: the id of its second output (the
   * batch norm's), the sums being the first (under the node's own id).
   */
  also?: number;
}

/** Thrown inside the analysis for anything it does not handle; foldBatchNorm then returns undefined. */
class Unsupported extends Error {}

const pair = (value: unknown, what: string): [number, number] => {
  const values = Array.isArray(value) ? value : [value, value];
  if (values.length !== 2 || !values.every((v) => Number.isInteger(v) && v > 0)) throw new Unsupported(what);
  return values as [number, number];
};

const padding = (value: unknown): Pad => {
  if (value !== 'same' && value !== 'valid') throw new Unsupported(`padding ${String(value)}`);
  return value;
};

/** The activations the fused ops take (softmax is an op of its own). */
const activationOf = (value: unknown): Activation => {
  if (value === 'linear' || value === 'relu') return value;
  throw new Unsupported(`activation ${String(value)}`);
};

/** The values of a model's weights, read once and asynchronously (a GPU backend may not read synchronously in Node). */
type WeightValues = Map<tf.LayerVariable, ArrayLike<number>>;

async function readWeights(model: tf.LayersModel): Promise<WeightValues> {
  const values = await Promise.all(model.weights.map((w) => w.read().data()));
  return new Map(model.weights.map((w, i) => [w, values[i]]));
}

/** A layer's weight by its own name ('kernel', 'gamma'...): its shape and float64 values; undefined if absent. */
function weight(
  layer: tf.layers.Layer,
  name: string,
  values: WeightValues,
): { shape: number[]; values: Float64Array } | undefined {
  const variable = layer.weights.find((w) => w.originalName.split('/').at(-1) === name);
  return variable && { shape: variable.shape as number[], values: Float64Array.from(values.get(variable)!) };
}

function required(
  layer: tf.layers.Layer,
  name: string,
  values: WeightValues,
): { shape: number[]; values: Float64Array } {
  const found = weight(layer, name, values);
  if (!found) throw new Unsupported(`${layer.name} has no ${name}`);
  return found;
}

/** The op of one layer, from its class, config and weights (before any folding). */
function opOf(layer: tf.layers.Layer, inputRank: number, values: WeightValues): Op {
  const config = layer.getConfig();
  const className = layer.getClassName();
  if ((config.dataFormat ?? 'channelsLast') !== 'channelsLast') throw new Unsupported('channels first');
  switch (className) {
    case 'Conv2D': {
      if (pair(config.dilationRate, 'dilation').some((d) => d !== 1)) throw new Unsupported('dilation');
      const kernel = required(layer, 'kernel', values);
      return {
        kind: 'conv',
        kernelShape: kernel.shape as [number, number, number, number],
        kernel: kernel.values,
        bias: config.useBias ? required(layer, 'bias', values).values : undefined,
        strides: pair(config.strides, 'strides'),
        pad: padding(config.padding),
        activation: activationOf(config.activation),
        residual: false,
      };
    }
    case 'BatchNormalization': {
      if (config.axis !== -1 && config.axis !== inputRank - 1) throw new Unsupported('batch norm not on channels');
      const mean = required(layer, 'moving_mean', values).values;
      const variance = required(layer, 'moving_variance', values).values;
      const gamma = config.scale ? required(layer, 'gamma', values).values : undefined;
      const beta = config.center ? required(layer, 'beta', values).values : undefined;
      const epsilon = config.epsilon as number;
      const scale = mean.map((_, c) => (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon));
      const shift = mean.map((m, c) => (beta ? beta[c] : 0) - m * scale[c]);
      return { kind: 'affine', scale, shift, activation: 'linear', rank: inputRank };
    }
    case 'Activation':
      if (config.activation === 'softmax') return { kind: 'softmax' };
      if (config.activation === 'relu') return { kind: 'relu' };
      throw new Unsupported(`activation ${String(config.activation)}`);
    case 'Add':
      return { kind: 'add' };
    case 'AveragePooling2D':
      return {
        kind: 'avgPool',
        poolSize: pair(config.poolSize, 'pool size'),
        strides: pair(config.strides ?? config.poolSize, 'pool strides'),
        pad: padding(config.padding),
      };
    case 'Flatten':
      return { kind: 'flatten' };
    case 'Dense': {
      if (inputRank !== 2) throw new Unsupported('dense on a rank above 2');
      const kernel = required(layer, 'kernel', values);
      const softmax = config.activation === 'softmax';
      return {
        kind: 'dense',
        kernelShape: kernel.shape as [number, number],
        kernel: kernel.values,
        bias: config.useBias ? required(layer, 'bias', values).values : undefined,
        activation: softmax ? 'linear' : activationOf(config.activation),
        softmax,
      };
    }
    default:
      throw new Unsupported(className);
  }
}

/** tfjs' symbolic tensors that the model's output is made from, each after the tensors it is made from. */
function topologicalOrder(output: tf.SymbolicTensor): tf.SymbolicTensor[] {
  const order: tf.SymbolicTensor[] = [];
  const seen = new Set<number>();
  const visit = (tensor: tf.SymbolicTensor) => {
    if (seen.has(tensor.id)) return;
    seen.add(tensor.id);
    tensor.inputs.forEach(visit);
    order.push(tensor);
  };
  visit(output);
  return order;
}

/** The convolution followed by a per-channel affine, as one convolution. */
function foldIntoConv(conv: Extract<Op, { kind: 'conv' }>, affine: Extract<Op, { kind: 'affine' }>): Op {
  const outChannels = conv.kernelShape[3];
  if (affine.scale.length !== outChannels) throw new Unsupported('batch norm size');
  const kernel = conv.kernel.map((w, i) => w * affine.scale[i % outChannels]);
  const bias = affine.shift.map((shift, c) => (conv.bias ? conv.bias[c] * affine.scale[c] : 0) + shift);
  return { ...conv, kernel, bias, activation: affine.activation };
}

/** A convolution that nothing has been merged into after its sums: a batch norm or a ReLU can still be. */
const plainConv = (op: Op | undefined): op is Extract<Op, { kind: 'conv' }> =>
  op?.kind === 'conv' && op.activation === 'linear' && !op.after;

/** `node` merged with the node it reads (`from`), or undefined when the two do not combine. */
function merge(node: Op, from: Op): Op | undefined {
  if (node.kind === 'affine' && plainConv(from) && !from.residual) return foldIntoConv(from, node);
  if (node.kind === 'relu' && (plainConv(from) || (from.kind === 'affine' && from.activation === 'linear'))) {
    return { ...from, activation: 'relu' };
  }
  return undefined;
}

/**
 * The model's graph as ops, folded: a batch norm after a convolution goes into its kernel and bias, a ReLU after
 * a convolution or a batch norm becomes its activation, the add of a residual connection joins the convolution
 * before it, and a batch norm after such an add is done as the convolution stores its outputs (which are kept too
 * when another layer reads them). A producer is merged with its reader only when nothing else reads it, but for
 * that last case. Throws Unsupported for anything but one image input and one output through the layers known here.
 */
function analyse(
  model: tf.LayersModel,
  values: WeightValues,
): { nodes: Map<number, Node>; inputId: number; outputId: number } {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Unsupported('several inputs or outputs');
  const input = model.inputs[0];
  if (input.shape.length !== 4) throw new Unsupported('not an image input');
  const outputId = model.outputs[0].id;
  const nodes = new Map<number, Node>();
  const readers = new Map<number, number>([[outputId, 1]]);
  const order = topologicalOrder(model.outputs[0]);
  for (const tensor of order) {
    const layer = tensor.sourceLayer;
    if (layer.inboundNodes.length !== 1) throw new Unsupported(`${layer.name} is shared`);
    if (tensor.id === input.id) continue;
    const inputs = tensor.inputs.map((t) => t.id);
    if (inputs.length === 0) throw new Unsupported(`another input, ${layer.name}`);
    if (inputs.length !== 1 && layer.getClassName() !== 'Add') throw new Unsupported(`${layer.name}'s inputs`);
    for (const id of inputs) readers.set(id, (readers.get(id) ?? 0) + 1);
    nodes.set(tensor.id, { op: opOf(layer, tensor.inputs[0].shape.length, values), inputs });
  }
  const shapes = new Map(order.map((tensor) => [tensor.id, tensor.shape.join()]));
  const readOnce = (id: number) => readers.get(id) === 1;
  // Map order is the topological order, and a merged node takes its reader's place: it is met again as the
  // producer of the next reader.
  for (const [id, node] of nodes) {
    if (node.op.kind === 'add' && node.inputs.length === 2) {
      const [a, b] = node.inputs;
      const convId = [a, b].find((i) => readOnce(i) && plainConv(nodes.get(i)?.op));
      const conv = convId === undefined ? undefined : nodes.get(convId);
      if (!conv || conv.op.kind !== 'conv' || conv.op.residual || shapes.get(a) !== shapes.get(b)) continue;
      nodes.set(id, { op: { ...conv.op, residual: true }, inputs: [...conv.inputs, convId === a ? b : a] });
      nodes.delete(convId!);
      continue;
    }
    const fromId = node.inputs[0];
    const from = nodes.get(fromId);
    if (!from || node.inputs.length !== 1 || !readOnce(fromId)) continue;
    const merged = merge(node.op, from.op);
    if (!merged) continue;
    nodes.set(id, { op: merged, inputs: from.inputs });
    nodes.delete(fromId);
  }
  // The batch norms left after a convolution (after a residual add, or on sums read elsewhere too).
  for (const [id, node] of nodes) {
    const fromId = node.inputs[0];
    const from = nodes.get(fromId);
    if (node.op.kind !== 'affine' || !from || !plainConv(from.op)) continue;
    const { scale, shift, activation } = node.op;
    const op: Op = { ...from.op, after: { scale, shift }, activation };
    if (readOnce(fromId)) {
      nodes.set(id, { op, inputs: from.inputs });
      nodes.delete(fromId);
    } else {
      nodes.set(fromId, { op, inputs: from.inputs, also: id });
      nodes.delete(id);
    }
  }
  return { nodes, inputId: input.id, outputId };
}

/** An op's run function, with its weights made into tensors (pushed on `owned`) once, when the network is built. */
function prepare(op: Op, keepRaw: boolean, owned: tf.Tensor[]): (inputs: tf.Tensor[]) => tf.Tensor | tf.Tensor[] {
  const tensor = <R extends tf.Rank>(values: Float64Array, shape: tf.ShapeMap[R]): tf.Tensor<R> => {
    const t = tf.tensor(Float32Array.from(values), shape) as tf.Tensor<R>;
    owned.push(t);
    return t;
  };
  switch (op.kind) {
    case 'conv': {
      const filter = tensor<tf.Rank.R4>(op.kernel, op.kernelShape);
      const bias = op.bias && tensor<tf.Rank.R1>(op.bias, [op.bias.length]);
      const after = op.after && {
        scale: tensor<tf.Rank.R1>(op.after.scale, [op.after.scale.length]),
        shift: tensor<tf.Rank.R1>(op.after.shift, [op.after.shift.length]),
      };
      const { strides, pad, activation } = op;
      return ([x, residual]) => {
        const args = { x: x as tf.Tensor4D, filter, bias, residual: residual as tf.Tensor4D, affine: after };
        return keepRaw
          ? inferenceConv2d({ ...args, strides, pad, activation }, true)
          : inferenceConv2d({ ...args, strides, pad, activation });
      };
    }
    case 'affine': {
      const channels = op.scale.length;
      const shift = tensor<tf.Rank.R1>(op.shift, [channels]);
      const { activation } = op;
      if (op.rank === 4) {
        // A 1x1 depthwise convolution with bias and activation: XNNPACK (wasm) runs it as one multiply-add pass with
        // the ReLU as its clamp (as src/tf-kernels/batch-norm.ts does for tf.batchNorm).
        const filter = tensor<tf.Rank.R4>(op.scale, [1, 1, channels, 1]);
        return ([x]) =>
          tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter, strides: 1, pad: 'valid', bias: shift, activation });
      }
      const scale = tensor<tf.Rank.R1>(op.scale, [channels]);
      return ([x]) => {
        const y = tf.add(tf.mul(x, scale), shift);
        return activation === 'relu' ? tf.relu(y) : y;
      };
    }
    case 'relu':
      return ([x]) => tf.relu(x);
    case 'softmax':
      return ([x]) => tf.softmax(x);
    case 'add':
      return (inputs) => (inputs.length === 2 ? tf.add(inputs[0], inputs[1]) : tf.addN(inputs));
    case 'avgPool': {
      const { poolSize, strides, pad } = op;
      return ([x]) => tf.avgPool(x as tf.Tensor4D, poolSize, strides, pad);
    }
    case 'flatten':
      return ([x]) => tf.reshape(x, [x.shape[0], -1]);
    case 'dense': {
      const b = tensor<tf.Rank.R2>(op.kernel, op.kernelShape);
      const bias = op.bias && tensor<tf.Rank.R1>(op.bias, [op.bias.length]);
      const { activation, softmax } = op;
      return ([x]) => {
        const y = tf.fused.matMul({ a: x as tf.Tensor2D, b, bias, activation });
        return softmax ? tf.softmax(y) : y;
      };
    }
  }
}

/**
 * The model as an inference-only network with its batch norms folded, or undefined when the model has a structure
 * this does not handle (use the model itself then). The network holds a copy of the weights as they are now;
 * dispose() frees it.
 */
export async function foldBatchNorm(model: tf.LayersModel): Promise<FoldedNetwork | undefined> {
  let graph: ReturnType<typeof analyse>;
  try {
    graph = analyse(model, await readWeights(model));
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  const owned: tf.Tensor[] = [];
  const steps = [...graph.nodes].map(([id, node]) => ({
    outputs: node.also === undefined ? [id] : [id, node.also],
    inputs: node.inputs,
    run: prepare(node.op, node.also !== undefined, owned),
  }));
  // Each intermediate is freed once its last reader ran, so a batch holds no more memory than in predict.
  const readers = new Map<number, number>();
  for (const step of steps) for (const id of step.inputs) readers.set(id, (readers.get(id) ?? 0) + 1);
  const { inputId, outputId } = graph;
  return {
    inputs: model.inputs.map((input) => ({ shape: input.shape })),
    predict(images: tf.Tensor4D): tf.Tensor {
      const values = new Map<number, tf.Tensor>([[inputId, images]]);
      const left = new Map(readers);
      try {
        for (const step of steps) {
          const inputs = step.inputs.map((id) => values.get(id)!);
          const outputs = tf.tidy(() => step.run(inputs));
          [outputs].flat().forEach((output, i) => values.set(step.outputs[i], output));
          for (const id of step.inputs) {
            left.set(id, left.get(id)! - 1);
            if (left.get(id) === 0 && id !== inputId) {
              values.get(id)!.dispose();
              values.delete(id);
            }
          }
        }
        const output = values.get(outputId)!;
        values.delete(outputId);
        return output;
      } finally {
        for (const [id, value] of values) if (id !== inputId) value.dispose();
      }
    },
    dispose(): void {
      tf.dispose(owned);
    },
  };
}

/** Runs `use` with `model` folded for inference when it can be (the model itself otherwise); frees the copy after. */
export async function withInferenceNetwork<T>(
  model: tf.LayersModel,
  use: (network: ImageClassifier) => Promise<T>,
): Promise<T> {
  const folded = await foldBatchNorm(model);
  try {
    return await use(folded ?? model);
  } finally {
    folded?.dispose();
  }
}
