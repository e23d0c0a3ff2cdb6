/** Four decimals, as Keras prints losses and accuracies. */
export function fraction4(value: number): string {
  return Number.isFinite(value) ? value.toFixed(4) : String(value);
}
