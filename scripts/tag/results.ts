/**
 * Result lines as the API sends them, and their CSV form. ImageNet labels
 * contain commas ("crane, bird"), some contain quotes or apostrophes, and URLs
 * or error messages can hold anything, so every field goes through csvField().
 */

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

export interface ResultLine {
  item: number;
  source: { url: string } | { key: string } | Record<string, unknown>;
  status: "done" | "failed" | "skipped" | string;
  sha256?: string;
  cached?: boolean;
  predictions?: Prediction[];
  error?: { code: string; message: string };
}

/** Parses and minimally checks one NDJSON line; a malformed line is a server bug worth stopping on. */
export function parseResultLine(line: string): ResultLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`results: not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof v !== "object" || v === null || !Number.isInteger((v as { item?: unknown }).item)) {
    throw new Error(`results: line without an integer "item": ${line.slice(0, 200)}`);
  }
  return v as ResultLine;
}

export function sourceText(source: ResultLine["source"]): string {
  if (source && typeof source === "object") {
    if ("url" in source && typeof source.url === "string") return source.url;
    if ("key" in source && typeof source.key === "string") return source.key;
  }
  return JSON.stringify(source ?? null);
}

/** RFC 4180: quote when the field holds a comma, quote, CR or LF; double embedded quotes. */
export function csvField(value: string | number | boolean | undefined | null): string {
  if (value === undefined || value === null) return "";
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(fields: Array<string | number | boolean | undefined | null>): string {
  // CRLF is what RFC 4180 specifies and what spreadsheets expect; embedded LFs stay inside quotes.
  return `${fields.map(csvField).join(",")}\r\n`;
}

export function csvHeader(topK: number): string {
  const cols = ["item", "source", "status", "sha256", "cached"];
  for (let i = 1; i <= topK; i++) cols.push(`label_${i}`, `score_${i}`);
  cols.push("error");
  return csvRow(cols);
}

/** One row with exactly topK label/score pairs (empty when the item has fewer, or failed). */
export function resultToCsv(r: ResultLine, topK: number): string {
  const fields: Array<string | number | boolean | undefined> = [
    r.item,
    sourceText(r.source),
    r.status,
    r.sha256,
    r.cached,
  ];
  for (let i = 0; i < topK; i++) {
    const p = r.predictions?.[i];
    fields.push(p?.label, p?.score);
  }
  fields.push(r.error ? `${r.error.code}: ${r.error.message}` : undefined);
  return csvRow(fields);
}

/**
 * A small RFC 4180 reader (quoted fields, doubled quotes, CRLF or LF, newlines
 * inside quotes). Used by the tests and the end-to-end check to prove that what
 * resultToCsv writes reads back field for field.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += ch;
      }
      i++;
      continue;
    }
    if (ch === '"' && field === "") quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      if (ch === "\r" && text[i + 1] === "\n") i++;
    } else field += ch;
    i++;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
