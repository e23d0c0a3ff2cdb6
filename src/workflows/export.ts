// `malaria export`'s work: the model folder written anew with quantized weights (src/model/export.ts), on the backend
// asked for.
import { selectBackend, type BackendChoice } from '../backends/select.js';
import { exportModel, type ExportOptions, type ExportResult } from '../model/export.js';
import type { Reporter } from '../report/reporter.js';

export async function exportForField(
  options: ExportOptions & { backend: BackendChoice },
  report: Reporter,
): Promise<ExportResult> {
  const backend = await selectBackend(options.backend);
  const result = await exportModel(options);
  // After the work, so a model folder that is not ours is one line and nothing else.
  report.note(backend.message);
  return result;
}
