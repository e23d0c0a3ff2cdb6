// PNG plots without a display: an SVG string rasterised by sharp (librsvg + fontconfig fonts), marked as ours and
// written atomically, only where a file may be replaced (src/io/output-file.ts).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { describeFsError, UserError } from '../errors.js';
import { sweepLeftovers, writeFileAtomic } from '../io/atomic.js';
import { asOutputFile, checkOutputFile, markAsOurs, type OutputFile } from '../io/output-file.js';
import { epochCount, type TrainingHistory } from '../model/history.js';
import type { RocPoint } from '../stats/metrics.js';
import type { Calibration } from '../stats/calibration.js';
import {
  dataLine,
  drawAxes,
  fontScale,
  GGPLOT_COLORS,
  legend,
  makeFrame,
  markers,
  niceDomain,
  niceTicks,
  panelClip,
  svgDocument,
  text,
  xPixel,
  yPixel,
  type Frame,
  type LegendEntry,
  type LineStyle,
} from './svg.js';

export interface PlotSize {
  width?: number;
  height?: number;
}

/** The id of the panel's clip path, which every data line of a plot refers to. */
export const CLIP_ID = 'panel';
/** Dots on every epoch only while they stay apart; with many epochs they would just thicken the line. */
const MAX_EPOCHS_WITH_MARKERS = 30;

function checkedSize({ width = 800, height = 600 }: PlotSize): { width: number; height: number } {
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(value) || value < 200 || value > 8000) {
      throw new UserError(`plot ${name} must be an integer between 200 and 8000 pixels, got ${value}`);
    }
  }
  return { width, height };
}

/** The tutorial's figure: train/val loss and accuracy per epoch on one axis, legend in the lower left. */
export function trainingPlotSvg(history: TrainingHistory, size: PlotSize = {}): string {
  const { width, height } = checkedSize(size);
  const epochs = epochCount(history);
  const series = [
    { label: 'train_loss', values: history.loss, color: GGPLOT_COLORS[0] },
    { label: 'val_loss', values: history.val_loss, color: GGPLOT_COLORS[1] },
    { label: 'train_acc', values: history.accuracy, color: GGPLOT_COLORS[2] },
    { label: 'val_acc', values: history.val_accuracy, color: GGPLOT_COLORS[3] },
  ];
  const finite = series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)));
  // Always include 0..1 so accuracy sits on a familiar scale even when losses are small.
  const yDomain = niceDomain(Math.min(0, ...finite), Math.max(1, ...finite), 7);
  // matplotlib's 5% margins keep the first and last epoch off the frame; one epoch still gets a visible range.
  const xMargin = epochs <= 1 ? 0.5 : 0.05 * (epochs - 1);
  const xDomain: [number, number] = [1 - xMargin, Math.max(1, epochs) + xMargin];
  const frame = makeFrame(width, height, xDomain, yDomain);
  const scale = fontScale(frame);

  const parts = [`<defs>${panelClip(frame, CLIP_ID)}</defs>`];
  parts.push(
    drawAxes(frame, {
      title: 'Training Loss and Accuracy on Dataset',
      xLabel: 'Epoch #',
      yLabel: 'Loss/Accuracy',
      xTicks: epochs <= 1 ? { values: [1], decimals: 0 } : niceTicks(xDomain[0], xDomain[1], 10, true),
      yTicks: niceTicks(yDomain[0], yDomain[1], 7),
    }),
  );
  for (const s of series) {
    const points = s.values.map((value, i) => [i + 1, value] as const);
    parts.push(dataLine(frame, points, { color: s.color, width: 2 * scale }, CLIP_ID));
    if (epochs <= MAX_EPOCHS_WITH_MARKERS)
      parts.push(markers(frame, points, s.color, (epochs <= 3 ? 5 : 3) * scale, CLIP_ID));
  }
  if (epochs === 0) {
    parts.push(drawNote(frame, 'no epochs recorded'));
  }
  parts.push(
    legend(
      frame,
      series.map((s) => ({ label: s.values.length > 0 ? s.label : `${s.label} (none)`, color: s.color })),
      'lower left',
    ),
  );
  return svgDocument(width, height, parts.join('\n'));
}

function drawNote(frame: Frame, note: string): string {
  return text((frame.left + frame.right) / 2, (frame.top + frame.bottom) / 2, note, {
    size: 16 * fontScale(frame),
    anchor: 'middle',
    fill: '#555555',
  });
}

export interface RocPlotInfo {
  auc: number | null;
  /** The chosen threshold's point, marked on the curve. */
  operatingPoint?: RocPoint;
  title?: string;
}

/** An ROC panel's start, shared by every ROC plot: the unit square's axes and the dashed chance diagonal. */
export function rocPanel(
  width: number,
  height: number,
  title: string,
): { frame: Frame; scale: number; parts: string[]; chance: LineStyle & { dash: string } } {
  const frame = makeFrame(width, height, [0, 1], [0, 1]);
  const scale = fontScale(frame);
  const ticks = niceTicks(0, 1, 6);
  const parts = [`<defs>${panelClip(frame, CLIP_ID)}</defs>`];
  parts.push(
    drawAxes(frame, {
      title,
      xLabel: 'False positive rate (1 - specificity)',
      yLabel: 'True positive rate (sensitivity)',
      xTicks: ticks,
      yTicks: ticks,
    }),
  );
  const chance = { color: GGPLOT_COLORS[3], width: 1.5 * scale, dash: `${6 * scale},${5 * scale}` };
  parts.push(
    dataLine(
      frame,
      [
        [0, 0],
        [1, 1],
      ],
      chance,
    ),
  );
  return { frame, scale, parts, chance };
}

/** ROC curve with the chance diagonal, the AUC in the legend and the operating point marked. */
export function rocPlotSvg(curve: readonly RocPoint[], info: RocPlotInfo, size: PlotSize = {}): string {
  const { width, height } = checkedSize(size);
  const { frame, scale, parts, chance } = rocPanel(width, height, info.title ?? 'ROC Curve');
  const curveColor = GGPLOT_COLORS[0];
  parts.push(
    dataLine(
      frame,
      curve.map((p) => [p.fpr, p.tpr] as const),
      { color: curveColor, width: 2.5 * scale },
      CLIP_ID,
    ),
  );
  const entries: LegendEntry[] = [
    { label: info.auc === null ? 'ROC (AUC undefined)' : `ROC (AUC = ${info.auc.toFixed(4)})`, color: curveColor },
    { label: 'chance', color: chance.color, dash: chance.dash },
  ];
  const point = info.operatingPoint;
  if (point !== undefined) {
    const cx = xPixel(frame, point.fpr);
    const cy = yPixel(frame, point.tpr);
    const pointColor = GGPLOT_COLORS[1];
    parts.push(
      `<circle cx="${cx.toFixed(2)}" cy="${cy.toFixed(2)}" r="${(7 * scale).toFixed(2)}" fill="${pointColor}" stroke="#222222" stroke-width="${(1.5 * scale).toFixed(2)}"/>`,
    );
    entries.push({
      label: `threshold ${formatThreshold(point.threshold)}: sensitivity ${point.tpr.toFixed(3)}, specificity ${(1 - point.fpr).toFixed(3)}`,
      color: pointColor,
      marker: true,
    });
  }
  if (curve.length === 0) parts.push(drawNote(frame, 'ROC undefined: the data hold only one class'));
  parts.push(legend(frame, entries, 'lower right'));
  return svgDocument(width, height, parts.join('\n'));
}

function formatThreshold(threshold: number): string {
  return Number.isFinite(threshold) ? threshold.toFixed(4) : String(threshold);
}

/**
 * The reliability diagram: per confidence bin, a bar up to the fraction of images the model got right, beside the
 * diagonal where a calibrated model's bars end; a dot at (mean confidence, accuracy) per bin lies on the diagonal
 * when the bin is calibrated. ECE in the title.
 */
export function reliabilityPlotSvg(calibration: Calibration, title: string, size: PlotSize = {}): string {
  const { width, height } = checkedSize(size);
  const frame = makeFrame(width, height, [0, 1], [0, 1]);
  const scale = fontScale(frame);
  const ticks = niceTicks(0, 1, 6);
  const parts = [`<defs>${panelClip(frame, CLIP_ID)}</defs>`];
  const heading = `${title} (ECE ${calibration.ece.toFixed(4)}, ${calibration.images} images)`;
  parts.push(
    drawAxes(frame, {
      title: heading,
      xLabel: 'Confidence (probability of the top class)',
      yLabel: 'Accuracy',
      xTicks: ticks,
      yTicks: ticks,
    }),
  );
  const barColor = GGPLOT_COLORS[1];
  const gapColor = GGPLOT_COLORS[0];
  for (const bin of calibration.bins) {
    if (bin.accuracy === null || bin.confidence === null) continue;
    const x = xPixel(frame, bin.lower) + scale;
    const barWidth = xPixel(frame, bin.upper) - xPixel(frame, bin.lower) - 2 * scale;
    const top = yPixel(frame, bin.accuracy);
    parts.push(
      `<rect x="${x.toFixed(2)}" y="${top.toFixed(2)}" width="${barWidth.toFixed(2)}" height="${(frame.bottom - top).toFixed(2)}" fill="${barColor}"/>`,
    );
  }
  const diagonal = { color: GGPLOT_COLORS[3], width: 1.5 * scale, dash: `${6 * scale},${5 * scale}` };
  parts.push(
    dataLine(
      frame,
      [
        [0, 0],
        [1, 1],
      ],
      diagonal,
    ),
  );
  const filled = calibration.bins.filter((bin) => bin.count > 0);
  parts.push(
    markers(
      frame,
      filled.map((bin) => [bin.confidence as number, bin.accuracy as number] as const),
      gapColor,
      5 * scale,
      CLIP_ID,
    ),
  );
  if (filled.length === 0) parts.push(drawNote(frame, 'no images'));
  const entries: LegendEntry[] = [
    { label: 'accuracy per bin', color: barColor },
    { label: 'at mean confidence', color: gapColor, marker: true },
    { label: 'calibrated', color: diagonal.color, dash: diagonal.dash },
  ];
  // Two-class confidences start at 0.5, so the lower left stays free.
  parts.push(legend(frame, entries, 'lower left'));
  return svgDocument(width, height, parts.join('\n'));
}

export async function renderReliabilityPlot(
  calibration: Calibration,
  title: string,
  file: string | OutputFile,
  size: PlotSize = {},
): Promise<void> {
  await writePng(reliabilityPlotSvg(calibration, title, size), file);
}

export async function renderTrainingPlot(
  history: TrainingHistory,
  file: string | OutputFile,
  size: PlotSize = {},
): Promise<void> {
  await writePng(trainingPlotSvg(history, size), file);
}

export async function renderRocPlot(
  curve: readonly RocPoint[],
  info: RocPlotInfo,
  file: string | OutputFile,
  size: PlotSize = {},
): Promise<void> {
  await writePng(rocPlotSvg(curve, info, size), file);
}

/** Rasterise and write via a temp file + rename, so a crash never leaves a half-written PNG behind. */
export async function writePng(svg: string, file: string | OutputFile): Promise<void> {
  await writePngBuffer(await sharp(Buffer.from(svg)).flatten({ background: '#FFFFFF' }).png().toBuffer(), file);
}

/**
 * Writes encoded PNG bytes the way writePng does: marked as ours, only over nothing, our own PNG or (`force`) any
 * file, folders made, leftovers cleared, atomically. A plain path is written without --force.
 */
export async function writePngBuffer(png: Buffer, target: string | OutputFile): Promise<void> {
  const output = asOutputFile(target);
  const file = output.path;
  // Again as it is written: the command checked at its start, and a long run leaves time for a file to appear.
  await checkOutputFile(file, output.label, { force: output.force });
  const dir = path.dirname(path.resolve(file));
  try {
    await mkdir(dir, { recursive: true });
    // Leftovers of a plot killed while being written are ours to clear, once the file itself may be replaced.
    await sweepLeftovers(dir, [path.basename(file)]);
    await writeFileAtomic(file, markAsOurs(png));
  } catch (err) {
    const message = describeFsError(err, file);
    if (message !== undefined) throw new UserError(message, 1);
    throw err;
  }
}
