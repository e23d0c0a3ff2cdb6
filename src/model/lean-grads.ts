// tf.variableGrads with a smaller memory peak: the same gradients, computed on tfjs' own tape.
//
// tfjs' gradients() keeps every tensor the forward pass saved for the backward pass until the backward pass ends,
// and the gradient of every intermediate tensor too, and some temporaries of the gradient functions (batch norm's
// x - mean and dy * scale). For a ResNet that is several copies of every activation at once: on webgpu the
// tutorial's ResNet held 11 GB of device memory at batch 32 (BENCHMARKS.md). Here:
//   - what a node saves only for its shape (Add, Sub, Mean, Sum, Reshape) is dropped as it is saved, and ReLU
//     saves its output (which the next convolution saves anyway) instead of its input;
//   - batch norm in training mode (tf.moments, then tf.batchNorm with those statistics) gets one gradient for x
//     that includes the paths through the batch mean and variance, so the moments' own nodes get no gradient and
//     are skipped, and their square (x - mean)^2 is never kept;
//   - the backward pass frees what a node saved, and the gradients of its outputs, as soon as the node's own
//     gradient is computed, and each gradient function's temporaries with it.
// Every other gradient is tfjs' own, in tfjs' order; only batch norm's is rewritten (the same formula the wasm
// backend's own batch-norm gradient uses, src/tf-kernels/batch-norm-grad.ts), so gradients agree with
// tf.variableGrads to float32 rounding.
import { tf } from '../tf.js';
import { batchNormTrainingGradients } from '../tf-kernels/batch-norm-training-grad.js';
import { reluGradient } from '../tf-kernels/relu-wasm.js';
import { withTrainingBatchNorm } from './training-batch-norm.js';

/** A saved tensor replaced by what its gradient reads of it. */
interface ShapeOnly {
  readonly shape: number[];
  readonly dtype: tf.DataType;
  readonly rank: number;
  readonly size: number;
}
type Saved = Array<tf.Tensor | ShapeOnly>;
type GradientFunctions = Record<string, () => tf.Tensor>;

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved: Saved;
  gradient?: (dys: tf.Tensor[]) => GradientFunctions;
  /** Inputs whose gradient this node's gradient of x already includes (batch norm's own batch statistics). */
  folded?: ReadonlySet<string>;
}

/** The parts of tfjs' Engine this module drives (those its own gradients() uses). */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
  tidy<T extends tf.TensorContainer>(f: () => T): T;
  addTapeNode(
    kernelName: string,
    inputs: Record<string, tf.Tensor>,
    outputs: tf.Tensor[],
    gradientsFunc: unknown,
    saved: Saved,
    attrs: Record<string, unknown>,
  ): void;
}

/** Kernels whose gradient (tfjs-core's, and ours in src/tf-kernels) reads only the shape of what they save. */
const SAVED_FOR_SHAPE = new Set(['Add', 'Sub', 'Mean', 'Sum', 'Reshape']);

function shapeOnly(tensor: tf.Tensor): ShapeOnly {
  return { shape: tensor.shape.slice(), dtype: tensor.dtype, rank: tensor.rank, size: tensor.size };
}

function isTensor(value: tf.Tensor | ShapeOnly | undefined): value is tf.Tensor {
  return value instanceof tf.Tensor;
}

function disposeSaved(saved: Saved): void {
  for (const tensor of saved) if (isTensor(tensor)) tensor.dispose();
}

/** Replaces the contents of a node's saved list in place: its gradient function holds that very array. */
function replaceSaved(saved: Saved, items: Saved): void {
  saved.splice(0, saved.length, ...items);
}

/** The axes of a Mean node, from its attributes. */
function meanAxes(attrs: Record<string, unknown> | undefined, rank: number): number[] | undefined {
  if (!attrs || attrs.keepDims) return undefined;
  return tf.util.parseAxisParam(attrs.axis as number | number[], new Array(rank).fill(1));
}

/**
 * The gradient of training-mode batch norm, y = scale * (x - m) * r + offset with m and v the per-channel mean
 * and variance of x itself and r = 1 / sqrt(v + epsilon), with respect to x through all three of x, m and v:
 *   dx = scale * r * (dy - sum(dy) / n - (x - m) * r^2 * sum(dy * (x - m)) / n)
 * and the usual dscale = r * sum(dy * (x - m)), doffset = sum(dy); n is the number of values per channel.
 */
function batchNormTrainingGradient(saved: Saved, epsilon: number) {
  return ([dy]: tf.Tensor[]): GradientFunctions => {
    const [x, mean, variance, scale] = saved as tf.Tensor[];
    // wasm: the same formula in two passes over the activation (src/tf-kernels/batch-norm-training-grad.ts).
    const fused = batchNormTrainingGradients(x, mean, variance, scale, dy, epsilon);
    if (fused) return { ...fused };
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const count = x.size / x.shape[x.rank - 1];
    // Per-channel values only outlive these lines: full-size temporaries go as soon as they are summed.
    const sumDy = tf.sum(dy, axes);
    const sumDyCentred = tf.tidy(() => tf.sum(tf.mul(dy, tf.sub(x, mean)), axes));
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const gain = scale ? tf.mul(scale, rstd) : rstd;
    return {
      x: () => {
        const shift = tf.mul(gain, tf.div(sumDy, count));
        const slope = tf.mul(gain, tf.mul(tf.square(rstd), tf.div(sumDyCentred, count)));
        // dy * gain - shift - (x - mean) * slope, holding at most three full-size tensors besides x and dy.
        const sloped = tf.tidy(() => tf.mul(tf.sub(x, mean), slope));
        const scaled = tf.mul(dy, gain);
        const difference = tf.sub(scaled, sloped);
        tf.dispose([scaled, sloped]);
        const dx = tf.sub(difference, shift);
        difference.dispose();
        return dx;
      },
      scale: () => tf.mul(rstd, sumDyCentred),
      offset: () => tf.clone(sumDy),
    };
  };
}

/** Applies the rules above to each node as the forward pass records it; `finish` frees what no rule took. */
class LeanTape {
  /** Sub nodes' inputs by output id, for a Square of that output to recompute it. */
  private readonly subInputs = new Map<number, tf.Tensor[]>();
  /** The node that made each piece of data (reshapes and casts share their input's), and Mean nodes' axes. */
  private readonly producers = new Map<tf.DataId, { node: TapeNode; axes?: number[] }>();

  record(node: TapeNode, attrs: Record<string, unknown>): void {
    const saved: Saved = node.saved;
    const tensors = saved.filter(isTensor);
    for (const output of node.outputs) {
      if (!this.producers.has(output.dataId)) {
        const x = node.inputs.x;
        const axes = node.kernelName === 'Mean' && x ? meanAxes(attrs, x.rank) : undefined;
        this.producers.set(output.dataId, { node, axes });
      }
    }
    if (node.kernelName === 'Sub' && node.outputs.length === 1 && tensors.length === 2 && saved.length === 2) {
      this.subInputs.set(node.outputs[0].id, tensors);
      replaceSaved(saved, tensors.map(shapeOnly));
    } else if (SAVED_FOR_SHAPE.has(node.kernelName)) {
      disposeSaved(saved);
      replaceSaved(
        saved,
        saved.map((t) => (isTensor(t) ? shapeOnly(t) : t)),
      );
    } else if (node.kernelName === 'Relu' && node.outputs.length === 1 && saved.length === 1) {
      // relu(x) > 0 exactly where x > 0: the output gives the same step as the input.
      const output = tf.keep(node.outputs[0].clone());
      disposeSaved(saved);
      replaceSaved(saved, [output]);
      node.gradient = ([dy]) => ({ x: () => reluGradient(dy, output) });
    } else if (node.kernelName === 'Square' && saved.length === 1 && isTensor(saved[0])) {
      const difference = this.subInputs.get(node.inputs.x?.id);
      if (difference) {
        // x = a - b, recomputed by the same kernel from the same inputs if the gradient is ever needed.
        this.subInputs.delete(node.inputs.x.id);
        const [a, b] = difference;
        disposeSaved(saved);
        replaceSaved(saved, [a, b]);
        node.gradient = ([dy]) => ({ x: () => tf.mul(dy, tf.mul(tf.sub(a, b), 2)) });
      }
    } else if (node.kernelName === 'FusedBatchNorm' && this.usesItsOwnMoments(node)) {
      node.gradient = batchNormTrainingGradient(saved, attrs.varianceEpsilon as number);
      node.folded = new Set(['mean', 'variance']);
    }
  }

  /** True when batch norm's mean and variance are tf.moments of its own x over every axis but the last. */
  private usesItsOwnMoments(node: TapeNode): boolean {
    const { x, mean, variance } = node.inputs;
    if (!x || !mean || !variance || x.rank < 2 || mean.rank !== 1 || x.dtype !== 'float32') return false;
    const channels = x.shape[x.rank - 1];
    if (mean.shape[0] !== channels || variance.rank !== 1 || variance.shape[0] !== channels) return false;
    const everyAxisButLast = (axes: number[] | undefined) =>
      axes !== undefined && axes.length === x.rank - 1 && axes.every((axis, i) => axis === i);
    const meanOf = this.producers.get(mean.dataId);
    if (meanOf?.node.kernelName !== 'Mean' || meanOf.node.inputs.x?.dataId !== x.dataId) return false;
    if (!everyAxisButLast(meanOf.axes)) return false;
    const varianceOf = this.producers.get(variance.dataId);
    if (varianceOf?.node.kernelName !== 'Mean' || !everyAxisButLast(varianceOf.axes)) return false;
    const square = this.producers.get(varianceOf.node.inputs.x?.dataId)?.node;
    if (square?.kernelName !== 'Square') return false;
    const difference = this.producers.get(square.inputs.x?.dataId)?.node;
    return (
      difference?.kernelName === 'Sub' &&
      difference.inputs.a?.dataId === x.dataId &&
      difference.inputs.b?.dataId === mean.dataId
    );
  }

  finish(): void {
    for (const inputs of this.subInputs.values()) tf.dispose(inputs);
    this.subInputs.clear();
    this.producers.clear();
  }

  /** Runs `f` with the engine's tape on and these rules applied to every node it records. */
  forward(engine: EngineInternals, f: () => tf.Tensor): tf.Tensor {
    const addTapeNode = engine.addTapeNode.bind(engine);
    let inRule = false;
    engine.addTapeNode = (...args) => {
      addTapeNode(...args);
      const nodes = engine.state.activeTape;
      // The clones a rule makes are recorded too (Identity nodes that lead nowhere): leave them be.
      if (!inRule && nodes?.length) {
        inRule = true;
        try {
          this.record(nodes[nodes.length - 1], args[5] ?? {});
        } finally {
          inRule = false;
        }
      }
    };
    try {
      return engine.scopedRun(
        () => engine.startTape(),
        () => engine.endTape(),
        () => engine.tidy('forward', f),
      );
    } finally {
      // The instance's own property shadowed the prototype's method: removing it restores tfjs' behaviour.
      delete (engine as Partial<EngineInternals>).addTapeNode;
      this.finish();
    }
  }
}

/** The nodes on a path from `xs` to `y`, inputs pruned to those that depend on `xs` (tfjs' getFilteredNodesXToY). */
function nodesFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const output of node.outputs) fromX.add(output.id);
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((output) => toY.has(output.id))) {
      for (const input of Object.values(node.inputs)) toY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, input] of Object.entries(node.inputs)) if (fromX.has(input.id)) inputs[name] = input;
    filtered.push({ ...node, inputs });
  }
  return filtered;
}

/** One node's gradient for each of its inputs, each computed in its own scope so temporaries go at once. */
function inputGradients(engine: EngineInternals, node: TapeNode, dys: tf.Tensor[]): Record<string, tf.Tensor> {
  const gradient = node.gradient;
  if (!gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
  return engine.tidy(() => {
    const functions = gradient(dys);
    const result: Record<string, tf.Tensor> = {};
    for (const name of Object.keys(node.inputs)) {
      if (node.folded?.has(name)) continue;
      if (!(name in functions)) {
        throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(functions)}.`);
      }
      result[name] = engine.tidy(() => {
        const dx = functions[name]();
        // A gradient may hand back dy itself, which is freed with the node: give it its own handle on the data.
        return dys.includes(dx) ? dx.clone() : dx;
      });
    }
    return result;
  });
}

/**
 * Walks the tape backwards from y (whose gradient is 1), freeing each node's saved tensors and its outputs'
 * gradients once its own gradient is computed. A node none of whose outputs got a gradient adds nothing (every
 * gradient is linear in dy) and is skipped. Returns the gradient of each of `xs`: zeros where only skipped nodes
 * read it, as tfjs gives, and undefined where no node on the path does.
 */
function backpropagate(engine: EngineInternals, nodes: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): tf.Tensor[] {
  const wanted = new Set(xs.map((x) => x.id));
  const gradients = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
  const reached = new Set<number>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    for (const input of Object.values(node.inputs)) reached.add(input.id);
    if (node.outputs.every((output) => !gradients.has(output.id))) {
      disposeSaved(node.saved);
      continue;
    }
    const dys = node.outputs.map((output) => gradients.get(output.id) ?? null) as tf.Tensor[];
    for (const [name, dx] of Object.entries(inputGradients(engine, node, dys))) {
      const x = node.inputs[name];
      if (dx.dtype !== 'float32') {
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
        );
      }
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
        );
      }
      const sum = gradients.get(x.id);
      if (sum) {
        gradients.set(x.id, tf.add(sum, dx));
        sum.dispose();
        dx.dispose();
      } else {
        gradients.set(x.id, dx);
      }
    }
    disposeSaved(node.saved);
    for (const output of node.outputs) {
      if (wanted.has(output.id)) continue;
      gradients.get(output.id)?.dispose();
      gradients.delete(output.id);
    }
  }
  return xs.map((x) => gradients.get(x.id) ?? (reached.has(x.id) ? tf.zerosLike(x) : undefined)) as tf.Tensor[];
}

/**
 * The loss `f` returns and its gradient for each trainable variable, as tf.variableGrads(f, variables) gives
 * them, with a lower memory peak (see above). Inside another gradient computation (a tape already recording) it
 * is tf.variableGrads itself.
 */
export function leanVariableGrads(
  f: () => tf.Scalar,
  variables: tf.Variable[],
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = tf.engine() as unknown as EngineInternals;
  const recorded = () => engine.state.activeTape ?? [];
  if (engine.state.gradientDepth > 0 || recorded().length) return tf.variableGrads(f, variables);
  const trainable = variables.filter((v) => v.trainable);
  if (!trainable.length) throw new Error('leanVariableGrads() needs at least one trainable variable');
  let y: tf.Tensor | undefined;
  try {
    y = new LeanTape().forward(engine, f);
    if (y.rank !== 0) throw new Error(`The f passed in variableGrads(f) must return a scalar, got rank ${y.rank}`);
    const nodes = nodesFromXsToY(recorded(), trainable, y);
    // What the nodes off the path to y saved (accuracy counts, moving averages) is never read.
    const onPath = new Set(nodes.map((node) => node.id));
    for (const node of recorded()) if (!onPath.has(node.id)) disposeSaved(node.saved);
    const loss = y;
    const grads = engine.tidy('backward', () => backpropagate(engine, nodes, trainable, loss));
    if (grads.every((g) => g === undefined)) {
      throw new Error(
        'Cannot find a connection between any variable and the result of the loss function y=f(x). Please make sure the operations that use variables are inside the function f passed to minimize().',
      );
    }
    const named: tf.NamedTensorMap = {};
    trainable.forEach((v, i) => {
      if (grads[i]) named[v.name] = grads[i];
    });
    return { value: loss as tf.Scalar, grads: named };
  } catch (err) {
    y?.dispose();
    throw err;
  } finally {
    for (const node of recorded()) disposeSaved(node.saved);
    engine.state.activeTape = null;
  }
}

/**
 * model.apply(input, { training: true }), its batch norms through one kernel on wasm (training-batch-norm.ts),
 * freeing each layer's output once the last layer that reads it has run. tfjs-layers frees them so only in
 * inference: in training it keeps every layer's output until the call ends, though a gradient tape holds its own
 * handles on what it needs. For a model whose layers each run once (no shared layers); any other is run by
 * model.apply as it is.
 */
export function applyInTraining(model: tf.LayersModel, input: tf.Tensor): tf.Tensor {
  return withTrainingBatchNorm(model.layers, () => applyFreeingOutputs(model, input));
}

function applyFreeingOutputs(model: tf.LayersModel, input: tf.Tensor): tf.Tensor {
  const { layers } = model;
  if (layers.some((layer) => layer.inboundNodes.length !== 1)) {
    return model.apply(input, { training: true }) as tf.Tensor;
  }
  const readers = new Map<string, number>();
  for (const layer of layers) {
    for (const inbound of layer.inboundNodes[0].inboundLayers) {
      readers.set(inbound.name, (readers.get(inbound.name) ?? 0) + 1);
    }
  }
  const unread = new Map<tf.Tensor, number>();
  for (const layer of layers) {
    const apply = layer.apply;
    layer.apply = function (inputs, kwargs) {
      const output = apply.call(layer, inputs, kwargs);
      if (output instanceof tf.Tensor) unread.set(output, readers.get(layer.name) ?? 0);
      for (const x of Array.isArray(inputs) ? inputs : [inputs]) {
        const left = x instanceof tf.Tensor ? unread.get(x) : undefined;
        if (left === undefined) continue;
        if (left > 1) unread.set(x as tf.Tensor, left - 1);
        else {
          unread.delete(x as tf.Tensor);
          (x as tf.Tensor).dispose();
        }
      }
      return output;
    };
  }
  try {
    return model.apply(input, { training: true }) as tf.Tensor;
  } finally {
    // Each layer's own property shadowed the prototype's method: removing it restores tfjs' behaviour.
    for (const layer of layers) delete (layer as Partial<tf.layers.Layer>).apply;
  }
}
