// Minimal types for asciichart 1.5 (CommonJS, no bundled types): only what src/report/chart.ts uses.
declare module 'asciichart' {
  interface PlotConfig {
    min?: number;
    max?: number;
    /** Column of the y axis; labels are drawn to its left. */
    offset?: number;
    padding?: string;
    /** Rows above the lowest one (the chart has height + 1 rows). */
    height?: number;
    colors?: string[];
    /** [axis at zero, axis, -, -, horizontal, down-right corner, up-right corner, right-down corner, right-up corner, vertical] */
    symbols?: string[];
    format?: (value: number, row: number) => string;
  }

  interface AsciiChart {
    plot(series: number[] | number[][], config?: PlotConfig): string;
    colored(char: string, color?: string): string;
    readonly blue: string;
    readonly red: string;
    readonly green: string;
    readonly yellow: string;
    readonly magenta: string;
    readonly cyan: string;
    readonly lightblue: string;
    readonly lightred: string;
    readonly lightgreen: string;
    readonly lightmagenta: string;
    readonly darkgray: string;
    readonly reset: string;
  }

  const asciichart: AsciiChart;
  export default asciichart;
}
