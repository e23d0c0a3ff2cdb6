// crossval's picture: the ROC curve of every fold's held-out patients over the pooled curve, so the spread between
// folds (which patients are tested) is seen at a glance, beside the chance diagonal.
import type { RocPoint } from '../stats/metrics.js';
import { CLIP_ID, rocPanel, writePng } from './plot.js';
import { dataLine, GGPLOT_COLORS, legend, svgDocument, type LegendEntry } from './svg.js';

export interface FoldCurve {
  fold: number;
  curve: RocPoint[] | null;
  auc: number | null;
}

const POOLED_COLOR = '#222222';
const aucText = (auc: number | null): string => (auc === null ? 'AUC undefined' : `AUC ${auc.toFixed(4)}`);

/** One ROC panel: a thin coloured curve per fold, the pooled curve thick and dark, the diagonal dashed. */
function crossvalRocSvg(
  folds: readonly FoldCurve[],
  pooled: { curve: RocPoint[] | null; auc: number | null },
  title: string,
  width = 800,
  height = 600,
): string {
  const { frame, scale, parts, chance } = rocPanel(width, height, title);
  const entries: LegendEntry[] = [];
  // Grey is the chance line's colour: the folds take the palette without it.
  const palette = GGPLOT_COLORS.filter((_, i) => i !== 3);
  folds.forEach((fold, i) => {
    const color = palette[i % palette.length];
    if (fold.curve)
      parts.push(
        dataLine(
          frame,
          fold.curve.map((p) => [p.fpr, p.tpr] as const),
          { color, width: 1.8 * scale },
          CLIP_ID,
        ),
      );
    entries.push({ label: `fold ${fold.fold} (${aucText(fold.auc)})`, color });
  });
  if (pooled.curve)
    parts.push(
      dataLine(
        frame,
        pooled.curve.map((p) => [p.fpr, p.tpr] as const),
        { color: POOLED_COLOR, width: 3 * scale },
        CLIP_ID,
      ),
    );
  entries.push({ label: `all folds pooled (${aucText(pooled.auc)})`, color: POOLED_COLOR });
  entries.push({ label: 'chance', color: chance.color, dash: chance.dash });
  parts.push(legend(frame, entries, 'lower right'));
  return svgDocument(width, height, parts.join('\n'));
}

export async function renderCrossvalRoc(
  folds: readonly FoldCurve[],
  pooled: { curve: RocPoint[] | null; auc: number | null },
  title: string,
  file: string,
): Promise<void> {
  await writePng(crossvalRocSvg(folds, pooled, title), file);
}
