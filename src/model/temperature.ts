// Temperature scaling (Guo et al. 2017): p' = softmax(log(p) / T). The model ends in a softmax, so log(p) equals its
// logits up to a per-image constant, which softmax ignores. T > 1 softens overconfident probabilities, T < 1
// sharpens; T = 1 leaves them as they are, and the ranking of the classes never changes (nor any two-class decision
// at 0.5). Plain JavaScript with no imports: the browser app runs this very module.

/** Where the fit searches: wide enough for any plausible model, bounded so a degenerate fit cannot run away. */
export const TEMPERATURE_RANGE: readonly [number, number] = [0.05, 20];

/**
 * Probabilities below this count as this much: only the NLL's log needs it (a zero probability of the true class
 * would make the NLL infinite for every T). Far below anything a calibrated model says.
 */
const PROBABILITY_FLOOR = 1e-30;

/** Row-major n x classes probabilities scaled by temperature `temperature`; T = 1 returns the input unchanged. */
export function applyTemperature(probabilities: Float32Array, classes: number, temperature: number): Float32Array {
  if (temperature === 1) return probabilities;
  const scaled = new Float32Array(probabilities.length);
  const logits = new Float64Array(classes);
  for (let start = 0; start < probabilities.length; start += classes) {
    scaledLogits(probabilities, start, classes, temperature, logits);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += logits[c] = Math.exp(logits[c]);
    for (let c = 0; c < classes; c++) scaled[start + c] = logits[c] / sum;
  }
  return scaled;
}

/** log(p_c) / T for one row, shifted so the largest is 0 (exp cannot overflow); a zero probability stays -inf. */
function scaledLogits(
  probabilities: Float32Array,
  start: number,
  classes: number,
  temperature: number,
  out: Float64Array,
): void {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, (out[c] = Math.log(probabilities[start + c])));
  for (let c = 0; c < classes; c++) out[c] = (out[c] - max) / temperature;
}

/** Mean negative log-likelihood of the true labels under the probabilities scaled by `temperature`. */
export function temperatureNll(
  probabilities: Float32Array,
  labels: Int32Array,
  classes: number,
  temperature: number,
): number {
  const logits = new Float64Array(classes);
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    scaledLogits(probabilities, i * classes, classes, temperature, logits);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[c]);
    // log p'_y = logit_y - log(sum), floored so one confidently wrong image gives a large but finite loss.
    total -= Math.max(Math.log(PROBABILITY_FLOOR), logits[labels[i]] - Math.log(sum));
  }
  return total / labels.length;
}

export interface TemperatureFit {
  temperature: number;
  /** Mean NLL at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
  /** True when the optimum lies at an end of TEMPERATURE_RANGE: the data pushed T as far as it could go. */
  atBound: boolean;
}

/**
 * The T in TEMPERATURE_RANGE minimising the NLL, by golden-section search on log T. The NLL is convex in 1/T, so
 * it has one minimum along log T and the search finds it.
 */
export function fitTemperature(probabilities: Float32Array, labels: Int32Array, classes: number): TemperatureFit {
  if (labels.length === 0) throw new Error('cannot fit a temperature on no images');
  const nll = (logT: number) => temperatureNll(probabilities, labels, classes, Math.exp(logT));
  const [low, high] = TEMPERATURE_RANGE.map(Math.log);
  const ratio = (Math.sqrt(5) - 1) / 2;
  let a = low;
  let b = high;
  let c = b - ratio * (b - a);
  let d = a + ratio * (b - a);
  let fc = nll(c);
  let fd = nll(d);
  while (b - a > 1e-5) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - ratio * (b - a);
      fc = nll(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + ratio * (b - a);
      fd = nll(d);
    }
  }
  const logT = (a + b) / 2;
  const temperature = Number(Math.exp(logT).toPrecision(6));
  const edge = 1e-3;
  return {
    temperature,
    nllBefore: nll(0),
    nllAfter: nll(Math.log(temperature)),
    atBound: logT - low < edge || high - logT < edge,
  };
}
