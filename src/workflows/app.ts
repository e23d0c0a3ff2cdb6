// `malaria app`'s work: the field web app written for a model (src/app/write-app.ts), on the backend that suffices.
import { selectBackend } from '../backends/select.js';
import { writeApp, type WrittenApp } from '../app/write-app.js';

export async function writeFieldApp(options: { modelDir: string; outDir: string }): Promise<WrittenApp> {
  // The model is loaded once to check it; the pure-JS backend is enough for that.
  await selectBackend('cpu');
  return writeApp(options);
}
