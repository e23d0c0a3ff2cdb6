// `evaluate --errors <png>`: the misclassified cells themselves, as a contact sheet, the most confident mistakes
// first. Split-wide figures cannot tell a model's blind spot from a doubtful label; looking at the cells can.
import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import type { LabelledProbabilities } from '../stats/labelled-probabilities.js';
import { patientIdOf } from '../dataset/patients.js';
import type { OutputFile } from '../io/output-file.js';
import { writePngBuffer } from './plot.js';
import { svgDocument, text } from './svg.js';

/** One cell the model got wrong. */
export interface MisclassifiedCell {
  file: string;
  truth: string;
  /** The probability the model gave the true class: the lower, the more confident the mistake. */
  pTruth: number;
}

/** The cells whose decision (`predicted`, one class index per row) is not their label, lowest P(true class) first. */
export function misclassifiedCells(
  predictions: LabelledProbabilities,
  predicted: ArrayLike<number>,
  files: readonly string[],
  classNames: readonly string[],
): MisclassifiedCell[] {
  const { probabilities, labels, classes } = predictions;
  if (files.length !== labels.length || predicted.length !== labels.length) {
    throw new RangeError(`${labels.length} predictions but ${files.length} files and ${predicted.length} decisions`);
  }
  const cells: MisclassifiedCell[] = [];
  labels.forEach((label, i) => {
    if (predicted[i] === label) return;
    cells.push({
      file: files[i],
      truth: classNames[label],
      pTruth: probabilities[i * classes + label],
    });
  });
  // Stable: equal probabilities keep file order, so the sheet is the same on every run.
  return cells.sort((a, b) => a.pTruth - b.pTruth);
}

/** Tile and page geometry, exported so a test can find each cell on the sheet. */
export const SHEET = {
  columns: 10,
  cell: 96,
  /** Caption height under each cell, and the gap around tiles. */
  caption: 30,
  gap: 8,
  header: 40,
  /** Cells drawn at most; the header says how many there were. */
  limit: 100,
} as const;

const tileWidth = SHEET.cell + SHEET.gap;
const tileHeight = SHEET.cell + SHEET.caption + SHEET.gap;

/** Top-left corner of the image of tile `index`. */
export function tileOrigin(index: number): { left: number; top: number } {
  return {
    left: SHEET.gap + (index % SHEET.columns) * tileWidth,
    top: SHEET.header + Math.floor(index / SHEET.columns) * tileHeight,
  };
}

function sheetSize(tiles: number): { width: number; height: number } {
  const rows = Math.max(1, Math.ceil(tiles / SHEET.columns));
  return { width: SHEET.gap + SHEET.columns * tileWidth, height: SHEET.header + rows * tileHeight };
}

/** One tile of a contact sheet: a cell's image file and the caption lines drawn under it (two fit). */
export interface SheetTile {
  file: string;
  caption: readonly string[];
}

/** A contact sheet of cells: the tiles in drawing order and the two header lines. */
export interface CellSheet {
  /** Every cell; the first SHEET.limit are drawn. */
  tiles: readonly SheetTile[];
  /** The bold first line, given how many tiles are drawn (of tiles.length). */
  heading: (drawn: number) => string;
  /** The second line: how to read the tiles. */
  subtitle: string;
}

/** The header and each tile's caption, as an SVG overlay. */
function captionsSvg(tiles: readonly SheetTile[], heading: string, subtitle: string): string {
  const { width, height } = sheetSize(tiles.length);
  const parts = [
    text(SHEET.gap, 18, heading, { size: 14, weight: 'bold' }),
    text(SHEET.gap, 34, subtitle, { size: 11 }),
  ];
  tiles.forEach((tile, i) => {
    const { left, top } = tileOrigin(i);
    tile.caption.forEach((line, row) => parts.push(text(left, top + SHEET.cell + 12 + 12 * row, line, { size: 10 })));
  });
  return svgDocument(width, height, parts.join('\n'));
}

/** A cell's image scaled to fit one tile on black (the background the data set's cells already have). */
async function tileImage(file: string): Promise<Buffer | undefined> {
  try {
    return await sharp(file)
      .removeAlpha()
      .resize(SHEET.cell, SHEET.cell, { fit: 'contain', background: '#000000' })
      .png()
      .toBuffer();
  } catch {
    return undefined; // it decoded for the prediction; if it no longer does, its tile stays blank
  }
}

/** Draws the sheet (its first SHEET.limit tiles) and writes it to `file`; returns how many tiles were drawn. */
export async function renderCellSheet(sheet: CellSheet, file: string | OutputFile): Promise<number> {
  const drawn = sheet.tiles.slice(0, SHEET.limit);
  const page = Buffer.from(captionsSvg(drawn, sheet.heading(drawn.length), sheet.subtitle));
  const images: OverlayOptions[] = [];
  for (const [i, tile] of drawn.entries()) {
    const input = await tileImage(tile.file);
    if (input) images.push({ input, ...tileOrigin(i) });
  }
  const png = await sharp(page).flatten({ background: '#FFFFFF' }).composite(images).png().toBuffer();
  await writePngBuffer(png, file);
  return drawn.length;
}

/** A cell's name on its tile: the patient id when the name carries one, else the name, shortened. */
export const shortName = (file: string): string => {
  const base = path.basename(file);
  return patientIdOf(base) ?? (base.length > 16 ? `${base.slice(0, 15)}…` : base);
};

/** Writes the contact sheet of `cells` (the first SHEET.limit) to `file`; returns how many were drawn. */
export async function renderErrorSheet(
  cells: readonly MisclassifiedCell[],
  title: string,
  file: string | OutputFile,
): Promise<number> {
  return renderCellSheet(
    {
      tiles: cells.map((cell) => ({
        file: cell.file,
        caption: [`true ${cell.truth}`, `P ${cell.pTruth.toFixed(2)} ${shortName(cell.file)}`],
      })),
      heading: (drawn) =>
        `${title}: ${cells.length} misclassified${drawn < cells.length ? `, the ${drawn} most confident shown` : ''}`,
      subtitle: 'most confident first; under each cell: its true class, the probability given to it',
    },
    file,
  );
}
