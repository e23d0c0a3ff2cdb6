// Terminal charts of the training history (loss and accuracy per epoch) drawn with asciichart.
import asciichart from 'asciichart';
import { epochCount, type TrainingHistory } from '../model/history.js';

export interface AsciiChartOptions {
  /** ANSI colours; off by default because the output often goes to a log file. */
  color?: boolean;
  /** Rows per chart above the lowest one. */
  height?: number;
  /** Longer histories are sampled down to this many columns so lines don't wrap. */
  maxWidth?: number;
}

interface SeriesSpec {
  name: string;
  values: readonly number[];
  /** Train and validation lines differ by stroke as well as colour, so they stay apart without colour. */
  symbols: string[];
  color: string;
}

const SOLID = ['┼', '┤', '╶', '╴', '─', '╰', '╭', '╮', '╯', '│'];
const DASHED = ['┼', '┤', '╶', '╴', '┄', '╰', '╭', '╮', '╯', '┆'];
const AXIS = SOLID[1];
const AXIS_MARK = SOLID[0];

/** Loss (train + val) and accuracy (train + val) per epoch, each with a legend, as one string. */
export function asciiChart(history: TrainingHistory, options: AsciiChartOptions = {}): string {
  const epochs = epochCount(history);
  if (epochs === 0) return 'No epochs recorded yet: nothing to chart.\n';
  const blocks = [
    chartBlock(
      'Loss',
      epochs,
      [
        { name: 'train_loss', values: history.loss, symbols: SOLID, color: asciichart.red },
        { name: 'val_loss', values: history.val_loss, symbols: DASHED, color: asciichart.blue },
      ],
      options,
    ),
    chartBlock(
      'Accuracy',
      epochs,
      [
        { name: 'train_acc', values: history.accuracy, symbols: SOLID, color: asciichart.magenta },
        { name: 'val_acc', values: history.val_accuracy, symbols: DASHED, color: asciichart.green },
      ],
      options,
    ),
  ];
  return `${blocks.join('\n\n')}\n`;
}

interface PreparedSeries extends SeriesSpec {
  points: number[];
  nonFinite: number;
  last: number | undefined;
}

function chartBlock(title: string, epochs: number, specs: SeriesSpec[], options: AsciiChartOptions): string {
  const height = options.height ?? 8;
  const maxWidth = Math.max(2, options.maxWidth ?? 100);
  const columns = sampleIndices(epochs, maxWidth);
  const drawn: PreparedSeries[] = [];
  const legend: string[] = [];
  for (const spec of specs) {
    const prepared = prepare(spec, columns);
    const swatch = paint(`${spec.symbols[4]}${spec.symbols[4]}`, spec.color, options.color);
    if (prepared === undefined) {
      legend.push(`${swatch} ${spec.name} (none)`);
      continue;
    }
    drawn.push(prepared);
    const note =
      prepared.nonFinite > 0
        ? ` (${prepared.nonFinite} non-finite epoch${prepared.nonFinite > 1 ? 's' : ''} not drawn)`
        : '';
    legend.push(`${swatch} ${spec.name} ${prepared.last === undefined ? '-' : prepared.last.toFixed(4)}${note}`);
  }
  const span =
    epochs === 1 ? 'epoch 1' : `epochs 1-${epochs}${columns.length < epochs ? `, ${columns.length} sampled` : ''}`;
  const heading = `${title} per epoch (${span})`;
  if (drawn.length === 0) return `${heading}\n  (no finite values)\n  ${legend.join('   ')}`;

  const all = drawn.flatMap((series) => series.points);
  const min = Math.min(...all);
  const max = Math.max(...all);
  const labelWidth = Math.max(min.toFixed(3).length, max.toFixed(3).length);
  const config = {
    min,
    max,
    height,
    offset: 2, // label in cell 0, axis in cell 1, so a row is label + axis + plot cells
    format: (value: number) => value.toFixed(3).padStart(labelWidth),
  };
  // asciichart has one stroke style per call: draw each series alone on the same scale, then overlay.
  const grids = drawn.map((series) =>
    asciichart
      .plot(series.points, { ...config, symbols: series.symbols })
      .split('\n')
      .map((row) => Array.from(row)),
  );
  const rows = grids[0].map((_, r) =>
    overlayRow(
      grids.map((grid) => grid[r]),
      drawn,
      labelWidth,
      options.color,
    ),
  );

  const plotWidth = columns.length;
  const axisLine = `${' '.repeat(labelWidth)}└${'─'.repeat(plotWidth)}`;
  const first = `${columns[0] + 1}`;
  const last = `${columns[columns.length - 1] + 1}`;
  const gap = Math.max(1, plotWidth - first.length - last.length);
  const epochLine = `${' '.repeat(labelWidth)}${epochs === 1 ? first : `${first}${' '.repeat(gap)}${last}`} epoch`;
  return [heading, ...rows, axisLine, epochLine, `  ${legend.join('   ')}`].join('\n');
}

/** The first series with ink in a cell wins; the shared y labels come from the first grid. */
function overlayRow(rows: string[][], series: PreparedSeries[], axisIndex: number, color: boolean | undefined): string {
  const width = Math.max(...rows.map((row) => row.length));
  let out = '';
  for (let i = 0; i < width; i++) {
    const cells = rows.map((row) => row[i] ?? ' ');
    if (i < axisIndex) {
      out += cells[0];
    } else if (i === axisIndex) {
      // A series' first value marks the axis with '┼'; where the grids agree it is just the axis.
      const owner = cells.every((cell) => cell === cells[0]) ? -1 : cells.findIndex((cell) => cell === AXIS_MARK);
      out += owner < 0 ? cells[0] : paint(cells[owner], series[owner].color, color);
    } else {
      const owner = cells.findIndex((cell) => cell !== ' ');
      out += owner < 0 ? ' ' : paint(cells[owner], series[owner].color, color);
    }
  }
  return out.trimEnd() || AXIS;
}

function paint(text: string, color: string, enabled: boolean | undefined): string {
  return enabled ? asciichart.colored(text, color) : text;
}

/** Evenly spaced epoch indices (all of them when they fit); at least two so one epoch still draws a line. */
function sampleIndices(epochs: number, maxWidth: number): number[] {
  if (epochs === 1) return [0, 0];
  const count = Math.min(epochs, maxWidth);
  return Array.from({ length: count }, (_, i) => Math.round((i * (epochs - 1)) / (count - 1)));
}

/**
 * Values at the sampled epochs. asciichart cannot skip points, so a non-finite epoch (a diverged loss) repeats
 * the previous finite value and the legend says how many there were. undefined when nothing is drawable.
 */
function prepare(spec: SeriesSpec, columns: number[]): PreparedSeries | undefined {
  const finite = spec.values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return undefined;
  const points: number[] = [];
  let carried = finite[0];
  for (const index of columns) {
    const value = spec.values[index];
    if (value !== undefined && Number.isFinite(value)) carried = value;
    points.push(carried);
  }
  return { ...spec, points, nonFinite: spec.values.length - finite.length, last: finite[finite.length - 1] };
}
