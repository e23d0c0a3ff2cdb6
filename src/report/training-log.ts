// The lines `train` prints about its run: the model it trains and one line per epoch, as Keras prints them.
import type { tf } from '../tf.js';
import { parameterCounts } from '../model/resnet.js';
import type { EpochEndInfo } from '../model/train.js';
import { formatSeconds } from './progress.js';

/** Four decimals, as Keras prints losses and accuracies. */
export function fraction4(value: number): string {
  return Number.isFinite(value) ? value.toFixed(4) : String(value);
}

/** "model: ResNet stages 3,4,6 filters 64,128,256,512: 2,163,918 parameters (2,150,344 trainable), 64x64 input" */
export function modelLine(
  model: tf.LayersModel,
  shape: { stages: readonly number[]; filters: readonly number[]; imageSize: number },
): string {
  const { total, trainable } = parameterCounts(model);
  const number = (n: number) => n.toLocaleString('en-US');
  return `model: ResNet stages ${shape.stages.join(',')} filters ${shape.filters.join(',')}: ${number(total)} parameters (${number(trainable)} trainable), ${shape.imageSize}x${shape.imageSize} input`;
}

export function epochLine(info: EpochEndInfo, epochs: number): string {
  return (
    `Epoch ${info.epoch + 1}/${epochs} - ${formatSeconds(info.seconds)} - loss: ${fraction4(info.loss)} - accuracy: ${fraction4(info.accuracy)}` +
    ` - val_loss: ${fraction4(info.valLoss)} - val_accuracy: ${fraction4(info.valAccuracy)}` +
    (info.trainingWeightsValAccuracy === undefined
      ? ''
      : ` (average of the weights; the weights themselves: ${fraction4(info.trainingWeightsValAccuracy)})`) +
    ` - lr: ${info.lr.toPrecision(4)}` +
    ` - peak memory: ${(info.peakRssBytes / 1024 ** 3).toFixed(2)} GB`
  );
}
