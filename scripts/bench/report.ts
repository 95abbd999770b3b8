/** Table rows, targets and their PASS/FAIL verdicts, rendered as markdown. */

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
