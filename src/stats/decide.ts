// The screening decision of a two-class model, written once: `evaluate`, `predict`, crossval and the field app
// (which ships this module's compiled JS to the browser, so it imports nothing) must call the same cells positive.

/** Whether a cell whose P(positive class) is `pPositive` is called positive: a tie with the threshold is positive. */
export function decide(pPositive: number, threshold: number): boolean {
  return pPositive >= threshold;
}
