// Small SVG building blocks for line plots (matplotlib's ggplot style): axes frame, ticks, lines, legend.
const FONT_FAMILY = 'DejaVu Sans, Arial, Helvetica, sans-serif';

/** matplotlib's ggplot palette, in its cycle order. */
export const GGPLOT_COLORS = ['#E24A33', '#348ABD', '#988ED5', '#777777', '#FBC15E', '#8EBA42', '#FFB5B8'] as const;

const PANEL_FILL = '#E5E5E5';
const GRID_STROKE = '#FFFFFF';
const TICK_TEXT = '#555555';
const LABEL_TEXT = '#333333';

export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (char) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[char]};`,
  );
}

/** Numbers in attributes: short, and never "NaN" (which would make librsvg drop the element silently). */
function n(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`non-finite SVG coordinate ${value}`);
  return String(Math.round(value * 100) / 100);
}

export interface Ticks {
  values: number[];
  /** Decimals that show every tick distinctly (0.25 steps need 2). */
  decimals: number;
}

/**
 * "Nice" tick positions (1, 2, 2.5 or 5 times a power of ten) covering [min, max] with about `target` ticks.
 * `integer` keeps steps >= 1 (epochs).
 */
export function niceTicks(min: number, max: number, target = 6, integer = false): Ticks {
  if (!(max > min)) return { values: [min], decimals: decimalsFor(Math.abs(min) || 1) };
  const rough = (max - min) / Math.max(1, target - 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(
    integer ? 1 : 0,
    [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power,
  );
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const decimals = decimalsFor(step);
  const values: number[] = [];
  // Multiply (not accumulate) so 0.1 steps don't drift; round to the shown decimals to drop 0.30000000000000004.
  for (let i = first; i <= last; i++) values.push(Number((i * step).toFixed(decimals)));
  return { values, decimals };
}

function decimalsFor(step: number): number {
  for (let d = 0; d < 10; d++) {
    const scaled = step * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 * Math.max(1, scaled)) return d;
  }
  return 10;
}

/** Round a data range outwards to nice tick positions so the frame ends on a tick. */
export function niceDomain(min: number, max: number, target = 6): [number, number] {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceDomain(min - pad, max + pad, target);
  }
  const { values } = niceTicks(min, max, target);
  const step = values.length > 1 ? values[1] - values[0] : max - min;
  const lower = values[0] > min + 1e-12 ? values[0] - step : values[0];
  const upper = values[values.length - 1] < max - 1e-12 ? values[values.length - 1] + step : values[values.length - 1];
  return [lower, upper];
}

export interface Frame {
  width: number;
  height: number;
  /** Plot panel (inside the axes) in pixels. */
  left: number;
  top: number;
  right: number;
  bottom: number;
  xDomain: [number, number];
  yDomain: [number, number];
}

export function makeFrame(width: number, height: number, xDomain: [number, number], yDomain: [number, number]): Frame {
  // Margins scale with the image so text stays proportionate at sizes other than 800x600.
  const scale = Math.min(width / 800, height / 600);
  return {
    width,
    height,
    left: Math.round(78 * scale),
    top: Math.round(52 * scale),
    right: width - Math.round(28 * scale),
    bottom: height - Math.round(64 * scale),
    xDomain,
    yDomain,
  };
}

export function fontScale(frame: Frame): number {
  return Math.max(0.6, Math.min(frame.width / 800, frame.height / 600));
}

export function xPixel(frame: Frame, x: number): number {
  const [x0, x1] = frame.xDomain;
  return frame.left + ((x - x0) / (x1 - x0)) * (frame.right - frame.left);
}

export function yPixel(frame: Frame, y: number): number {
  const [y0, y1] = frame.yDomain;
  return frame.bottom - ((y - y0) / (y1 - y0)) * (frame.bottom - frame.top);
}

export function text(
  x: number,
  y: number,
  content: string,
  {
    size,
    anchor = 'start',
    fill = LABEL_TEXT,
    rotate,
    weight,
  }: { size: number; anchor?: 'start' | 'middle' | 'end'; fill?: string; rotate?: number; weight?: string },
): string {
  const transform = rotate === undefined ? '' : ` transform="rotate(${rotate} ${n(x)} ${n(y)})"`;
  const bold = weight === undefined ? '' : ` font-weight="${weight}"`;
  return `<text x="${n(x)}" y="${n(y)}" font-family="${FONT_FAMILY}" font-size="${n(size)}" text-anchor="${anchor}" fill="${fill}"${bold}${transform}>${escapeXml(content)}</text>`;
}

export interface AxesLabels {
  title: string;
  xLabel: string;
  yLabel: string;
  xTicks: Ticks;
  yTicks: Ticks;
}

/** Grey panel with white grid lines at the ticks, tick labels, title and axis labels. */
export function drawAxes(frame: Frame, labels: AxesLabels): string {
  const size = fontScale(frame);
  const parts: string[] = [];
  const { left, top, right, bottom } = frame;
  parts.push(
    `<rect x="${n(left)}" y="${n(top)}" width="${n(right - left)}" height="${n(bottom - top)}" fill="${PANEL_FILL}"/>`,
  );
  const inside = (value: number, [a, b]: [number, number]) => value >= a - 1e-9 && value <= b + 1e-9;
  for (const value of labels.xTicks.values.filter((v) => inside(v, frame.xDomain))) {
    const x = xPixel(frame, value);
    parts.push(
      `<line x1="${n(x)}" y1="${n(top)}" x2="${n(x)}" y2="${n(bottom)}" stroke="${GRID_STROKE}" stroke-width="1"/>`,
    );
    parts.push(
      `<line x1="${n(x)}" y1="${n(bottom)}" x2="${n(x)}" y2="${n(bottom + 5 * size)}" stroke="${TICK_TEXT}" stroke-width="1"/>`,
    );
    parts.push(
      text(x, bottom + 20 * size, value.toFixed(labels.xTicks.decimals), {
        size: 12 * size,
        anchor: 'middle',
        fill: TICK_TEXT,
      }),
    );
  }
  for (const value of labels.yTicks.values.filter((v) => inside(v, frame.yDomain))) {
    const y = yPixel(frame, value);
    parts.push(
      `<line x1="${n(left)}" y1="${n(y)}" x2="${n(right)}" y2="${n(y)}" stroke="${GRID_STROKE}" stroke-width="1"/>`,
    );
    parts.push(
      `<line x1="${n(left - 5 * size)}" y1="${n(y)}" x2="${n(left)}" y2="${n(y)}" stroke="${TICK_TEXT}" stroke-width="1"/>`,
    );
    parts.push(
      text(left - 8 * size, y + 4 * size, value.toFixed(labels.yTicks.decimals), {
        size: 12 * size,
        anchor: 'end',
        fill: TICK_TEXT,
      }),
    );
  }
  parts.push(text((left + right) / 2, top - 18 * size, labels.title, { size: 18 * size, anchor: 'middle' }));
  parts.push(text((left + right) / 2, frame.height - 16 * size, labels.xLabel, { size: 14 * size, anchor: 'middle' }));
  parts.push(text(22 * size, (top + bottom) / 2, labels.yLabel, { size: 14 * size, anchor: 'middle', rotate: -90 }));
  return parts.join('\n');
}

/** Clip path id for the panel, so out-of-range data never draws over the labels. */
export function panelClip(frame: Frame, id: string): string {
  return `<clipPath id="${id}"><rect x="${n(frame.left)}" y="${n(frame.top)}" width="${n(frame.right - frame.left)}" height="${n(frame.bottom - frame.top)}"/></clipPath>`;
}

export interface LineStyle {
  color: string;
  width?: number;
  dash?: string;
}

/** A data line; non-finite points break it into separate segments instead of corrupting the path. */
export function dataLine(
  frame: Frame,
  points: readonly (readonly [number, number])[],
  style: LineStyle,
  clipId?: string,
): string {
  const segments: string[] = [];
  let current: string[] = [];
  for (const [x, y] of points) {
    if (Number.isFinite(x) && Number.isFinite(y)) {
      current.push(`${n(xPixel(frame, x))},${n(yPixel(frame, y))}`);
    } else if (current.length > 0) {
      segments.push(current.join(' '));
      current = [];
    }
  }
  if (current.length > 0) segments.push(current.join(' '));
  const dash = style.dash === undefined ? '' : ` stroke-dasharray="${style.dash}"`;
  const clip = clipId === undefined ? '' : ` clip-path="url(#${clipId})"`;
  return segments
    .filter((segment) => segment.includes(' '))
    .map(
      (segment) =>
        `<polyline points="${segment}" fill="none" stroke="${style.color}" stroke-width="${n(style.width ?? 2)}" stroke-linejoin="round" stroke-linecap="round"${dash}${clip}/>`,
    )
    .join('\n');
}

export function markers(
  frame: Frame,
  points: readonly (readonly [number, number])[],
  color: string,
  radius: number,
  clipId?: string,
): string {
  const clip = clipId === undefined ? '' : ` clip-path="url(#${clipId})"`;
  return points
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    .map(
      ([x, y]) =>
        `<circle cx="${n(xPixel(frame, x))}" cy="${n(yPixel(frame, y))}" r="${n(radius)}" fill="${color}"${clip}/>`,
    )
    .join('\n');
}

export interface LegendEntry {
  label: string;
  color: string;
  dash?: string;
  /** Draw a dot instead of a line sample (for marked points). */
  marker?: boolean;
}

/** A legend box in a corner of the panel. Text width is estimated (DejaVu Sans averages ~0.6 em per glyph). */
export function legend(frame: Frame, entries: readonly LegendEntry[], corner: 'lower left' | 'lower right'): string {
  const size = fontScale(frame);
  const fontSize = 13 * size;
  const rowHeight = 22 * size;
  const sample = 28 * size;
  const pad = 10 * size;
  const textWidth = Math.max(...entries.map((entry) => [...entry.label].length)) * fontSize * 0.62;
  const boxWidth = pad + sample + 8 * size + textWidth + pad;
  const boxHeight = pad * 2 + rowHeight * entries.length - 6 * size;
  const margin = 12 * size;
  const x = corner === 'lower left' ? frame.left + margin : frame.right - margin - boxWidth;
  const y = frame.bottom - margin - boxHeight;
  const parts = [
    `<rect x="${n(x)}" y="${n(y)}" width="${n(boxWidth)}" height="${n(boxHeight)}" rx="${n(3 * size)}" fill="#FFFFFF" fill-opacity="0.85" stroke="#BBBBBB" stroke-width="1"/>`,
  ];
  entries.forEach((entry, i) => {
    const rowY = y + pad + rowHeight * i + rowHeight / 2 - 3 * size;
    if (entry.marker) {
      parts.push(
        `<circle cx="${n(x + pad + sample / 2)}" cy="${n(rowY)}" r="${n(5 * size)}" fill="${entry.color}" stroke="#222222" stroke-width="1"/>`,
      );
    } else {
      const dash = entry.dash === undefined ? '' : ` stroke-dasharray="${entry.dash}"`;
      parts.push(
        `<line x1="${n(x + pad)}" y1="${n(rowY)}" x2="${n(x + pad + sample)}" y2="${n(rowY)}" stroke="${entry.color}" stroke-width="${n(2.5 * size)}"${dash}/>`,
      );
    }
    parts.push(text(x + pad + sample + 8 * size, rowY + 4.5 * size, entry.label, { size: fontSize }));
  });
  return parts.join('\n');
}

export function svgDocument(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<rect width="${width}" height="${height}" fill="#FFFFFF"/>\n${body}\n</svg>\n`;
}
