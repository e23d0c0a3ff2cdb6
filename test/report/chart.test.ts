import { describe, expect, it } from 'vitest';
import { asciiChart } from '../../src/report/chart.js';
import type { TrainingHistory } from '../../src/model/history.js';

const ESC = '\x1b[';

function history(epochs: number): TrainingHistory {
  const h: TrainingHistory = { loss: [], accuracy: [], val_loss: [], val_accuracy: [], lr: [] };
  for (let i = 0; i < epochs; i++) {
    h.loss.push(1.6 - i * 0.05);
    h.val_loss.push(1.7 - i * 0.04);
    h.accuracy.push(0.5 + i * 0.015);
    h.val_accuracy.push(0.48 + i * 0.014);
    h.lr.push(0.1);
  }
  return h;
}

describe('asciiChart', () => {
  it('draws a loss chart and an accuracy chart with the four series in the legends', () => {
    const chart = asciiChart(history(30));
    expect(chart).toContain('Loss per epoch (epochs 1-30)');
    expect(chart).toContain('Accuracy per epoch (epochs 1-30)');
    // Final values: loss 1.6 - 29 * 0.05 = 0.15, val_loss 1.7 - 29 * 0.04 = 0.54, acc 0.935, val_acc 0.886.
    expect(chart).toContain('── train_loss 0.1500');
    expect(chart).toContain('┄┄ val_loss 0.5400');
    expect(chart).toContain('── train_acc 0.9350');
    expect(chart).toContain('┄┄ val_acc 0.8860');
  });

  it('labels the y axis from the data range (top row = max, bottom row = min)', () => {
    const lines = asciiChart(history(30), { height: 6 }).split('\n');
    const loss = lines.slice(1, 8); // height 6 -> 7 rows after the heading
    expect(loss[0].startsWith('1.700')).toBe(true); // val_loss starts at 1.7
    expect(loss[6].startsWith('0.150')).toBe(true); // train_loss ends at 0.15
    expect(lines[8]).toMatch(/^ {5}└─+$/);
  });

  it('draws train solid and validation dashed so they differ without colour', () => {
    const chart = asciiChart(history(30));
    const plotRows = chart.split('\n').filter((line) => /^\d\.\d{3}[┤┼]/.test(line));
    expect(plotRows.length).toBe(18); // 2 charts x (8 + 1) rows
    expect(plotRows.some((row) => row.includes('─'))).toBe(true);
    expect(plotRows.some((row) => row.includes('┄'))).toBe(true);
  });

  it('uses ANSI colours only when asked', () => {
    expect(asciiChart(history(5))).not.toContain(ESC);
    const coloured = asciiChart(history(5), { color: true });
    expect(coloured).toContain(ESC);
    expect(coloured).toContain('train_loss');
  });

  it('handles a single epoch', () => {
    const chart = asciiChart(history(1));
    expect(chart).toContain('Loss per epoch (epoch 1)');
    expect(chart).toContain('── train_loss 1.6000');
    expect(chart).toContain('┄┄ val_acc 0.4800');
    expect(chart).not.toMatch(/NaN|undefined/);
  });

  it('handles missing validation series and non-finite epochs without NaN in the output', () => {
    const h = history(4);
    h.val_loss = [];
    h.val_accuracy = [];
    h.loss[1] = Number.NaN;
    const chart = asciiChart(h);
    expect(chart).toContain('val_loss (none)');
    expect(chart).toContain('train_loss 1.4500 (1 non-finite epoch not drawn)');
    expect(chart).not.toMatch(/NaN/);
  });

  it('samples long histories down to maxWidth columns', () => {
    const chart = asciiChart(history(300), { maxWidth: 60 });
    expect(chart).toContain('epochs 1-300, 60 sampled');
    const axis = chart.split('\n').find((line) => line.includes('└'));
    expect(axis?.trim()).toBe(`└${'─'.repeat(60)}`);
    expect(chart).toMatch(/1 +300 epoch/);
  });

  it('says so when there is nothing to chart', () => {
    expect(asciiChart({ loss: [], accuracy: [], val_loss: [], val_accuracy: [], lr: [] })).toMatch(/No epochs/);
  });
});
