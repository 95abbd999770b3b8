/** Table rows, targets and their PASS/FAIL verdicts, rendered as markdown. */
import { median } from "./stats";

export interface Target {
  op: "<=" | ">=";
  value: number;
  /** How the target reads in the table, e.g. "≤ 1.10× ORT-web Node". Defaults to "≤ value unit". */
  label?: string;
}

export interface Row {
  section: string;
  name: string;
  /** null: could not be measured (the note says why). */
  value: number | null;
  unit: "ms" | "x" | "MB" | "img/s" | "%" | "";
  target?: Target;
  note?: string;
}

export type Verdict = "PASS" | "FAIL" | "n/a" | "info";

export function verdict(row: Row): Verdict {
  if (!row.target) return "info";
  if (row.value === null || !Number.isFinite(row.value)) return "n/a";
  const ok = row.target.op === "<=" ? row.value <= row.target.value : row.value >= row.target.value;
  return ok ? "PASS" : "FAIL";
}

export function formatValue(value: number | null, unit: Row["unit"]): string {
  if (value === null || !Number.isFinite(value)) return "—";
  const digits = unit === "x" ? 2 : Math.abs(value) >= 100 ? 0 : 1;
  const v = value.toFixed(digits);
  switch (unit) {
    case "x":
      return `${v}×`;
    case "":
      return v;
    case "%":
      return `${v}%`;
    default:
      return `${v} ${unit}`;
  }
}

function formatTarget(row: Row): string {
  const t = row.target;
  if (!t) return "";
  if (t.label) return t.label;
  return `${t.op === "<=" ? "≤" : "≥"} ${formatValue(t.value, row.unit)}`;
}

export function markdownTable(rows: readonly Row[]): string {
  const lines = ["| section | measurement | value | target | result |", "|---|---|---|---|---|"];
  let last = "";
  for (const r of rows) {
    const section = r.section === last ? "" : r.section;
    last = r.section;
    const v = verdict(r);
    const result = v === "PASS" ? "PASS" : v === "FAIL" ? "**FAIL**" : v === "n/a" ? "n/a" : "";
    const name = r.note ? `${r.name} <sub>${r.note}</sub>` : r.name;
    lines.push(`| ${section} | ${name} | ${formatValue(r.value, r.unit)} | ${formatTarget(r)} | ${result} |`);
  }
  return lines.join("\n");
}

/**
 * Several full runs (`--repeat N`) as one table: each figure is the median of
 * its runs, and its verdict is judged on that median. On a shared machine a
 * single run can land a figure within ~10 % of its target on either side of
 * it; the median of three is what the table should be judged on. A target
 * that depends on the run (bulk's, from that run's inference time) becomes
 * the median of its runs' targets. Rows keep the first run's order; a row only
 * some runs produced (a failed section) joins at the end. Values are medians
 * of the runs that measured something (null only if none did).
 */
export function mergeRuns(runs: readonly (readonly Row[])[]): Row[] {
  if (runs.length === 1) return [...(runs[0] ?? [])];
  const key = (r: Row) => `${r.section}\u0000${r.name}`;
  const groups = new Map<string, Row[]>();
  for (const rows of runs) {
    for (const r of rows) {
      const list = groups.get(key(r)) ?? [];
      list.push(r);
      groups.set(key(r), list);
    }
  }
  const merged: Row[] = [];
  for (const list of groups.values()) {
    const first = list[0] as Row;
    const values = list.map((r) => r.value).filter((v): v is number => v !== null && Number.isFinite(v));
    const value = values.length > 0 ? median(values) : null;
    const shown = list.map((r) => formatValue(r.value, r.unit)).join(" / ");
    const targets = list.map((r) => r.target).filter((t): t is Target => t !== undefined);
    let target = first.target;
    if (target && targets.some((t) => t.value !== target?.value)) {
      const v = median(targets.map((t) => t.value));
      target = {
        op: target.op,
        value: v,
        label: `${target.op === "<=" ? "≤" : "≥"} ${formatValue(v, first.unit)} (median of the runs' targets)`,
      };
    }
    merged.push({
      section: first.section,
      name: first.name,
      value,
      unit: first.unit,
      ...(target ? { target } : {}),
      note: `median of ${list.length} run${list.length === 1 ? "" : "s"}: ${shown}`,
    });
  }
  return merged;
}
