import { describe, expect, it } from "vitest";
import { mergeRuns, type Row, verdict } from "../../scripts/bench/report";

const row = (value: number | null, extra: Partial<Row> = {}): Row => ({
  section: "infer densenet-121",
  name: "int8 as served ÷ fp32",
  value,
  unit: "x",
  target: { op: "<=", value: 0.45 },
  ...extra,
});

describe("npm run bench -- --repeat: one table from several runs", () => {
  it("judges each figure on the median of its runs, and shows every run's value", () => {
    // One run alone would pass (0.44) or fail (0.70, a noise burst); the median of three decides,
    // where their mean (0.53) would be dragged over the target by the one bad run.
    const [merged] = mergeRuns([[row(0.7)], [row(0.44)], [row(0.45)]]);
    expect(merged?.value).toBe(0.45);
    expect(verdict(merged as Row)).toBe("PASS");
    expect(merged?.note).toBe("median of 3 runs: 0.70× / 0.44× / 0.45×");
    const [failing] = mergeRuns([[row(0.46)], [row(0.44)], [row(0.47)]]);
    expect(verdict(failing as Row)).toBe("FAIL");
  });

  it("an even number of runs takes the mean of the middle two; a run that measured nothing does not count", () => {
    expect(mergeRuns([[row(0.4)], [row(0.5)]])[0]?.value).toBeCloseTo(0.45, 12);
    const [merged] = mergeRuns([[row(0.4)], [row(null)], [row(0.5)]]);
    expect(merged?.value).toBeCloseTo(0.45, 12);
    expect(merged?.note).toBe("median of 3 runs: 0.40× / — / 0.50×");
    const [none] = mergeRuns([[row(null)], [row(null)]]);
    expect(none?.value).toBeNull();
    expect(verdict(none as Row)).toBe("n/a");
  });

  it("a target that differs between runs becomes the median of the runs' targets", () => {
    const bulk = (value: number, target: number): Row => ({
      section: "bulk",
      name: "throughput",
      value,
      unit: "img/s",
      target: { op: ">=", value: target, label: `≥ ${target} img/s (0.9 × 1/infer)` },
    });
    const [merged] = mergeRuns([[bulk(21, 27)], [bulk(22, 26)], [bulk(20, 28)]]);
    expect(merged?.value).toBe(21);
    expect(merged?.target).toEqual({ op: ">=", value: 27, label: "≥ 27.0 img/s (median of the runs' targets)" });
    expect(verdict(merged as Row)).toBe("FAIL");
    // An unchanged target keeps its own label.
    const same = mergeRuns([[bulk(21, 27)], [bulk(22, 27)]])[0];
    expect(same?.target?.label).toBe("≥ 27 img/s (0.9 × 1/infer)");
  });

  it("keeps the first run's row order and appends rows only later runs produced; one run passes through", () => {
    const a = row(1, { name: "a" });
    const b = row(2, { name: "b" });
    const failed = row(null, { section: "bulk", name: "section failed" });
    const merged = mergeRuns([
      [a, b],
      [b, a, failed],
    ]);
    expect(merged.map((r) => r.name)).toEqual(["a", "b", "section failed"]);
    expect(merged[2]?.note).toBe("median of 1 run: —");
    expect(mergeRuns([[a, b]])).toEqual([a, b]);
  });
});
