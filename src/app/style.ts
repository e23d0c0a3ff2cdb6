// app.css: a plain, high-contrast layout that reads on a laptop in a clinic or on a tablet.
export const APP_CSS = `:root {
  --ink: #1d2430; --muted: #5b6472; --line: #d5dae1; --paper: #ffffff; --wash: #f4f6f8;
  --positive: #b42318; --positive-wash: #fdecea; --negative: #1f6f4a; --negative-wash: #e8f5ee;
  --review: #b26b00; --accent: #1f5fae;
  font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--ink); background: var(--wash);
}
* { box-sizing: border-box; }
body { margin: 0; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { display: flex; align-items: baseline; justify-content: space-between; flex-wrap: wrap; gap: 8px; padding-top: 16px; }
h1 { font-size: 22px; margin: 0; }
.status { margin: 0; color: var(--muted); }
.offline { margin-left: 8px; padding: 1px 8px; border-radius: 10px; background: var(--negative-wash); color: var(--negative); font-size: 13px; }
section { margin-top: 14px; }
.drop { border: 2px dashed var(--line); border-radius: 10px; background: var(--paper); padding: 14px 18px; display: flex; align-items: center; flex-wrap: wrap; gap: 10px; }
.drop.over { border-color: var(--accent); background: #eef4fc; }
.drop p { margin: 0; }
.drop .progress { flex-basis: 100%; color: var(--muted); min-height: 1.4em; }
.button, button { font: inherit; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 6px; padding: 5px 12px; cursor: pointer; }
.button input { display: none; }
button.quiet { background: var(--paper); color: var(--accent); }
button.link { border: 0; background: none; color: var(--accent); padding: 0; text-decoration: underline; }
button:disabled { opacity: 0.45; cursor: default; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; }
.figure { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px; display: flex; flex-direction: column; gap: 2px; }
.figure.wide { grid-column: span 2; }
.figure .name { color: var(--muted); font-size: 13px; }
.figure .value { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.figure .detail { color: var(--muted); font-size: 13px; }
.threshold { grid-column: span 2; }
.threshold .controls { display: flex; gap: 10px; align-items: center; }
.threshold input[type=number] { width: 5.5em; font: inherit; font-size: 20px; padding: 2px 6px; }
.threshold input[type=range] { flex: 1; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 16px; }
.toolbar select { font: inherit; padding: 3px 6px; }
.toolbar .shown { color: var(--muted); flex: 1; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 10px; padding-bottom: 20px; }
.cell { position: relative; margin: 0; background: var(--paper); border: 2px solid var(--line); border-radius: 8px; overflow: hidden; }
.cell[hidden] { display: none; }
.cell img { display: block; width: 100%; aspect-ratio: 1; object-fit: contain; background: #000; }
.cell figcaption { padding: 4px 7px 6px; display: flex; flex-wrap: wrap; gap: 0 8px; align-items: baseline; font-size: 13px; }
.cell .label { font-weight: 650; }
.cell .p { font-variant-numeric: tabular-nums; color: var(--muted); }
.cell .file { flex-basis: 100%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: var(--muted); font-size: 11px; }
.cell .flag { display: none; }
.cell.positive { border-color: var(--positive); }
.cell.positive .label { color: var(--positive); }
.cell.positive figcaption { background: var(--positive-wash); }
.cell.negative { border-color: var(--negative); }
.cell.negative .label { color: var(--negative); }
.cell.negative figcaption { background: var(--negative-wash); }
.cell.review { outline: 3px dashed var(--review); outline-offset: 2px; }
.cell.review .flag { display: block; position: absolute; top: 6px; right: 6px; color: #fff; background: var(--review); border-radius: 8px; padding: 0 7px; font-weight: 650; box-shadow: 0 0 0 2px #fff; }
.cell.unreadable { opacity: 0.6; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 20px; }
`;
