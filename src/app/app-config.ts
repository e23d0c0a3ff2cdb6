// What the page needs to know about the model, computed once in Node and embedded in index.html, so the page
// does not repeat the rules (which class is positive, where the threshold comes from). Types only: the browser
// modules import it as a type, which compiles away.
import type { Preprocessing } from '../input/preprocessing.js';

export interface AppConfig {
  /** Output i of the model is the probability of classNames[i]. */
  classNames: string[];
  /** Index of the class a screener must not miss: the model's positiveClass (metadata.json). */
  positiveIndex: number;
  /** How a cell becomes the model's input (size, resize, stain step: metadata.json), as training prepared it. */
  preprocessing: Preprocessing;
  /** The decision threshold the page starts from: P(positive) >= threshold is positive. */
  threshold: number;
  /** Where the starting threshold came from: saved with the model, or the default 0.5. */
  thresholdSource: 'model' | 'default';
  /** Cells with |P(positive) - threshold| below this are marked for a human to check. */
  reviewMargin: number;
  /** Images above this many pixels are refused, as in training (decode.ts). */
  maxInputPixels: number;
  /** The model's temperature (metadata.json; 1 when absent), applied to every probability as Node applies it. */
  temperature: number;
  /** The model file, relative to index.html. */
  modelUrl: string;
  /** When the model was saved (metadata.json), shown so a field worker can tell models apart. */
  modelCreated: string;
  /** A hash of every file of the app: names the service worker's cache. */
  version: string;
}
