// Whether the probabilities mean what they say: the expected calibration error and the reliability diagram's data.
// Binning (Guo et al. 2017, the usual definition): each image goes by its confidence, the probability of the class
// the model ranks first, into one of 15 equal-width bins over [0, 1] (bin b holds [b/15, (b+1)/15), the last one
// also 1); ECE = sum over bins of (images in bin / images) x |accuracy in bin - mean confidence in bin|, where
// accuracy counts images whose top class is the true one. With two classes confidences lie in [0.5, 1], so only
// the upper half of the bins fill.

export const CALIBRATION_BINS = 15;

export interface ReliabilityBin {
  /** The bin covers confidences [lower, upper). */
  lower: number;
  upper: number;
  count: number;
  /** Mean confidence and fraction correct of the images in the bin; null when it is empty. */
  confidence: number | null;
  accuracy: number | null;
}

export interface Calibration {
  /** Expected calibration error, between 0 (perfect) and 1. */
  ece: number;
  bins: ReliabilityBin[];
  images: number;
}

/** ECE and the reliability bins of row-major n x classes probabilities against the true labels. */
export function calibrationOf(
  probabilities: Float32Array,
  labels: Int32Array,
  classes: number,
  binCount = CALIBRATION_BINS,
): Calibration {
  const counts = new Array<number>(binCount).fill(0);
  const confidenceSums = new Array<number>(binCount).fill(0);
  const correctCounts = new Array<number>(binCount).fill(0);
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const p = probabilities[i * classes + c];
      sum += p;
      if (p > probabilities[i * classes + best]) best = c;
    }
    const confidence = probabilities[i * classes + best] / sum;
    const bin = Math.min(binCount - 1, Math.floor(confidence * binCount));
    counts[bin]++;
    confidenceSums[bin] += confidence;
    if (best === labels[i]) correctCounts[bin]++;
  }
  const n = labels.length;
  let ece = 0;
  const bins = counts.map((count, b) => {
    const confidence = count ? confidenceSums[b] / count : null;
    const accuracy = count ? correctCounts[b] / count : null;
    if (count) ece += (count / n) * Math.abs((accuracy as number) - (confidence as number));
    return { lower: b / binCount, upper: (b + 1) / binCount, count, confidence, accuracy };
  });
  return { ece: n ? ece : 0, bins, images: n };
}
