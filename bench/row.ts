/** One figure of the benchmark report (the printed table, latest.md and the results JSON). */
export interface Row {
  section: string;
  metric: string;
  value: number | string;
  unit: string;
  target?: string;
  pass?: boolean;
  note?: string;
}
