/**
 * The Node-side model tools: scripts/onnx/model.ts (parameters, MACs, shape
 * probe, extra outputs), `npm run models:import` and the generated catalog.
 *
 * Independent references:
 *  - MACs: the committed manifests' figures, counted by PyTorch forward hooks
 *    on the torch modules (scripts/build_models.py) and per Keras layer for
 *    nsfwjs (scripts/convert_nsfwjs.py) — not from the ONNX graph.
 *  - Parameters: the same manifests count the framework's parameters, where a
 *    BatchNorm has gamma and beta. The exported ONNX graphs fold every BatchNorm
 *    that directly follows a convolution into that convolution's bias (one
 *    value per channel instead of two), so the graph holds exactly
 *    "framework count − folded BatchNorm channels". The folded channel counts
 *    are architecture facts (torchvision 0.14.1, printed once with python):
 *      mobilenet_v2: every one of its 52 BatchNorms follows a conv, 17,056 channels;
 *      densenet121: norm0 (64) + the norm2 of each of the 58 dense layers (128 each) = 7,488;
 *        its other 62 BatchNorms follow a concatenation and stay in the graph.
 *      nsfwjs's Keras MobileNetV2 (alpha 1.0) has torchvision's channel plan: 17,056.
 *  - Tiny graphs built here, whose counts follow from their definition.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseImportArgs } from "../../scripts/import/args";
import { importModel } from "../../scripts/import/run";
import { sha256Hex } from "../../scripts/model-files";
import { catalogIsCurrent, readCatalogEntries, renderCatalog } from "../../scripts/models-catalog";
import {
  addOutput,
  countMacs,
  countParameters,
  decodeModel,
  describeIo,
  encodeModel,
  findPooledFeatures,
  listInitializers,
  loadModel,
  type Model,
  onnx,
  probeShapes,
  runOnce,
} from "../../scripts/onnx/model";
import { ModelManifest } from "../../src/models/manifest";

const ROOT = join(import.meta.dirname, "..", "..");
const committed = async (id: string) =>
  ModelManifest.parse(JSON.parse(await readFile(join(ROOT, "models", id, "manifest.json"), "utf8")));

const FOLDED_BN_CHANNELS: Record<string, number> = {
  "mobilenet-v2": 17_056,
  "densenet-121": 7_488,
  "mobilenet-v2-nsfw": 17_056,
};

/** PyTorch figures: sum(p.numel() for p in model.parameters()) and Conv2d/Linear forward-hook MACs at 224x224. */
const TORCH_FIGURES: Record<string, { parameters: number; macs: number }> = {
  "mobilenet-v2": { parameters: 3_504_872, macs: 300_774_272 },
  "densenet-121": { parameters: 7_978_856, macs: 2_834_161_664 },
};

describe("ONNX graph library on the committed models", () => {
  for (const id of ["mobilenet-v2", "densenet-121"]) {
    it(`${id}: MACs equal the PyTorch-hook figure; parameters equal it minus the folded BatchNorm channels`, async () => {
      const torch = TORCH_FIGURES[id] as { parameters: number; macs: number };
      const model = await loadModel(join(ROOT, "models", id, "model.int8.onnx"));
      const shapes = await probeShapes(model);
      expect(countMacs(model, shapes)).toBe(torch.macs);
      expect(countParameters(model)).toBe(torch.parameters - (FOLDED_BN_CHANNELS[id] as number));
      // The manifests carry the PyTorch figures (written by scripts/build_models.py).
      expect((await committed(id)).stats).toEqual(torch);
    });
  }

  it("counts int8 QDQ weights as parameters, not their scales and zero points, and BN statistics not at all", async () => {
    // The weight-only file scripts/build_models.py writes (the served one is quantised further from it).
    const model = await loadModel(join(ROOT, "test", "fixtures", "models", "densenet-121.weight-only.onnx"));
    const tensors = new Map(listInitializers(model).map((t) => [t.name, t]));
    const dq = model.graph?.node?.filter((n) => n.opType === "DequantizeLinear") ?? [];
    expect(dq.length).toBe(121); // 120 convs + the classifier
    for (const n of dq) {
      const [weight, scale, zeroPoint] = (n.input ?? []).map((name) => tensors.get(name));
      expect(weight).toMatchObject({ dataType: "int8", parameterUses: 1 });
      expect(scale).toMatchObject({ dataType: "float32", parameterUses: 0 });
      expect(zeroPoint).toMatchObject({ dataType: "int8", parameterUses: 0 });
    }
    const bn = model.graph?.node?.filter((n) => n.opType === "BatchNormalization") ?? [];
    for (const n of bn) {
      const [, , , mean, variance] = n.input ?? [];
      for (const stat of [mean, variance]) expect(tensors.get(stat as string)?.parameterUses).toBe(0);
    }
    // 62 BatchNorms with 34,336 channels in all: gamma + beta counted for every one of them, also where
    // torch.onnx merged equal-valued initializers and feeds the extra users through Identity nodes.
    const bnChannels = bn.reduce((sum, n) => sum + (tensors.get(n.input?.[3] as string)?.elements ?? 0), 0);
    expect(bnChannels).toBe(34_336);
    const affineUses = [...tensors.values()]
      .filter((t) => t.dataType === "float32" && t.parameterUses > 0)
      .filter((t) => !dq.some((n) => n.input?.includes(t.name)));
    const convAndGemmBiases = (model.graph?.node ?? [])
      .filter((n) => n.opType === "Conv" || n.opType === "Gemm")
      .reduce((sum, n) => sum + (tensors.get(n.input?.[2] as string)?.elements ?? 0), 0);
    expect(affineUses.reduce((s, t) => s + t.elements * t.parameterUses, 0)).toBe(2 * 34_336 + convAndGemmBiases);
  });

  it("describes inputs and outputs, finds the pooled features, and adds them as an output that runs", async () => {
    const model = await loadModel(join(ROOT, "models", "mobilenet-v2", "model.int8.onnx"));
    expect(describeIo(model)).toEqual({
      inputs: [{ name: "input", elemType: "float32", dims: ["batch", 3, 224, 224] }],
      outputs: [
        { name: "logits", elemType: "float32", dims: ["batch", 1000] },
        { name: "features", elemType: "float32", dims: ["batch", 1280] },
      ],
    });
    const shapes = await probeShapes(model);
    const features = findPooledFeatures(model, shapes);
    expect(features).toMatchObject({ dim: 1280, type: "float32", dims: [1, 1280] });
    const withFeatures = addOutput(model, features?.name as string, { type: "float32", dims: ["batch", 1280] });
    expect(model.graph?.output?.length).toBe(2); // not modified
    const x = new Float32Array(3 * 224 * 224).fill(0.1);
    const out = await runOnce(encodeModel(withFeatures), { input: { data: x, dims: [1, 3, 224, 224] } }, "all");
    expect(out.logits?.dims).toEqual([1, 1000]);
    expect(out[features?.name as string]?.dims).toEqual([1, 1280]);
    expect(() => addOutput(model, "no-such-tensor")).toThrow(/no node produces a tensor named "no-such-tensor"/);
  });
});

// ---------------------------------------------------------------------------

interface TinySpec {
  channels?: number;
  size?: number;
  classes?: number;
}

function floats(n: number, seed: number): Uint8Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed + i * 1.618) * 0.2;
  return new Uint8Array(a.buffer);
}

/**
 * image [N,C,S,S] → Conv 3x3 pad 1 (4 channels) → Relu → GlobalAveragePool
 * ("pooled" [N,4,1,1]) → Conv 1x1 → "scores" [N,classes,1,1], the output
 * shape of the ONNX zoo's DenseNet. MACs = 4·S²·C·9 + classes·4; parameters =
 * 4·C·9 + 4 + classes·4 + classes.
 */
function tinyClassifier({ channels = 3, size = 8, classes = 10 }: TinySpec): Uint8Array {
  const init = (name: string, dims: number[], seed: number) => ({
    name,
    dataType: 1,
    dims,
    rawData: floats(
      dims.reduce((a, b) => a * b, 1),
      seed,
    ),
  });
  const io = (name: string, dims: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: 1,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
  const model: Model = {
    irVersion: 7,
    producerName: "edgetag-test",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "tiny",
      node: [
        {
          opType: "Conv",
          input: ["image", "w1", "b1"],
          output: ["c1"],
          name: "conv1",
          attribute: [{ name: "pads", type: 7, ints: [1, 1, 1, 1] }],
        },
        { opType: "Relu", input: ["c1"], output: ["r1"], name: "relu1" },
        { opType: "GlobalAveragePool", input: ["r1"], output: ["pooled"], name: "pool" },
        { opType: "Conv", input: ["pooled", "w2", "b2"], output: ["scores"], name: "fc" },
      ],
      initializer: [
        init("w1", [4, channels, 3, 3], 1),
        init("b1", [4], 2),
        init("w2", [classes, 4, 1, 1], 3),
        init("b2", [classes], 4),
      ],
      input: [io("image", ["N", channels, size, size])],
      output: [io("scores", ["N", classes, 1, 1])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

describe("npm run models:import", () => {
  let tmp: string;
  let outDir: string;
  let tinyPath: string;
  let oneChannelPath: string;
  let tenLabels: string;
  let nineLabels: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "edgetag-import-"));
    tinyPath = join(tmp, "tiny.onnx");
    oneChannelPath = join(tmp, "gray.onnx");
    tenLabels = join(tmp, "ten.json");
    nineLabels = join(tmp, "nine.json");
    await writeFile(tinyPath, tinyClassifier({}));
    await writeFile(oneChannelPath, tinyClassifier({ channels: 1 }));
    await writeFile(tenLabels, JSON.stringify(Array.from({ length: 10 }, (_, i) => `class ${i}`)));
    await writeFile(nineLabels, JSON.stringify(Array.from({ length: 9 }, (_, i) => `class ${i}`)));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** A fresh, empty --out-dir per case, so a rejected import can be seen to write nothing. */
  async function freshOut(name: string): Promise<string> {
    outDir = join(tmp, name);
    await mkdir(outDir, { recursive: true });
    return outDir;
  }

  const run = async (args: string[]) =>
    importModel(parseImportArgs(args, outDir) as Exclude<ReturnType<typeof parseImportArgs>, "help">);
  const tinyArgs = (...extra: string[]) => [
    tinyPath,
    "--id",
    "tiny",
    "--resize",
    "10",
    "--crop",
    "8",
    "--mean",
    "0.5",
    "--std",
    "0.25",
    "--untrained",
    "--no-upload",
    "--out-dir",
    outDir,
    ...extra,
  ];

  it("re-imports models/mobilenet-v2-nsfw with the nsfwjs preset: same file, input, preprocess, output and MACs", async () => {
    await freshOut("nsfw");
    const source = join(ROOT, "models", "mobilenet-v2-nsfw", "model.int8.onnx");
    const r = await run([
      source,
      "--id",
      "mobilenet-v2-nsfw",
      "--preset",
      "nsfwjs",
      "--trained",
      "--features",
      "features",
      "--no-upload",
      "--out-dir",
      outDir,
    ]);
    const want = await committed("mobilenet-v2-nsfw");
    const got = ModelManifest.parse(
      JSON.parse(await readFile(join(outDir, "mobilenet-v2-nsfw", "manifest.json"), "utf8")),
    );
    expect(got).toEqual(r.manifest);
    expect(got.input).toEqual(want.input);
    expect(got.preprocess).toEqual(want.preprocess);
    expect(got.output).toEqual(want.output);
    expect(got.labels).toBe(want.labels);
    expect(got.numClasses).toBe(want.numClasses);
    expect(got.stats.macs).toBe(want.stats.macs);
    expect(got.stats.parameters).toBe(want.stats.parameters - (FOLDED_BN_CHANNELS["mobilenet-v2-nsfw"] as number));
    // The graph already exports "features", so the served bytes are the source bytes.
    expect(got.file.sha256).toBe(want.file.sha256);
    expect(got.file.bytes).toBe(want.file.bytes);
    expect(got.file.r2Key).toBe(`models/mobilenet-v2-nsfw/${want.file.sha256.slice(0, 16)}/model.onnx`);
    expect(r.catalogWritten).toBe(false);
    expect(r.upload).toBe("skipped");
    // The label set comes along, so the out-dir is self-contained.
    expect(JSON.parse(await readFile(join(outDir, "labels", "nsfw-5.json"), "utf8"))).toEqual(
      JSON.parse(await readFile(join(ROOT, "models", "labels", "nsfw-5.json"), "utf8")),
    );
  });

  it("imports a graph whose output is [1,10,1,1], with its pooled features exposed, and writes every file", async () => {
    await freshOut("tiny");
    const r = await run(tinyArgs("--labels", tenLabels, "--features", "auto"));
    const m = r.manifest;
    expect(m).toMatchObject({
      id: "tiny",
      trained: false,
      input: { name: "image", layout: "NCHW", width: 8, height: 8 },
      preprocess: { resize: { mode: "shortest-edge", size: 10 }, crop: { width: 8, height: 8 }, filter: "bilinear" },
      output: { name: "scores", kind: "logits", features: { name: "pooled", dim: 4 } },
      labels: "ten",
      numClasses: 10,
      stats: { parameters: 4 * 3 * 9 + 4 + 10 * 4 + 10, macs: 4 * 64 * 3 * 9 + 10 * 4 },
    });
    expect(m.name).toMatch(/untrained/i);
    expect(m.description).toMatch(/UNTRAINED/);
    expect(m.preprocess.mean).toEqual([0.5, 0.5, 0.5]);
    expect(m.preprocess.rescale).toBeCloseTo(1 / 255, 15);

    const dir = join(outDir, "tiny");
    expect((await readdir(dir)).sort()).toEqual(["manifest.json", "model.onnx", "model.onnx.sha256"]);
    const bytes = await readFile(join(dir, "model.onnx"));
    expect(sha256Hex(bytes)).toBe(m.file.sha256);
    expect(bytes.byteLength).toBe(m.file.bytes);
    expect(m.file.r2Key).toBe(`models/tiny/${m.file.sha256.slice(0, 16)}/model.onnx`);
    expect(await readFile(join(dir, "model.onnx.sha256"), "utf8")).toBe(`${m.file.sha256}  model.onnx\n`);
    expect(JSON.parse(await readFile(join(outDir, "labels", "ten.json"), "utf8"))).toHaveLength(10);

    // The served graph has the features output and runs.
    const served = decodeModel(bytes);
    expect(served.graph?.output?.map((o) => o.name)).toEqual(["scores", "pooled"]);
    const out = await runOnce(bytes, { image: { data: new Float32Array(3 * 64).fill(0.3), dims: [1, 3, 8, 8] } });
    expect(out.scores?.dims).toEqual([1, 10, 1, 1]);
    expect(out.pooled?.dims).toEqual([1, 4, 1, 1]);

    // SHA256SUMS covers every .onnx/.json of the out-dir and is right.
    const sums = (await readFile(join(outDir, "SHA256SUMS"), "utf8")).trim().split("\n");
    expect(sums.map((l) => l.split("  ")[1])).toEqual(["labels/ten.json", "tiny/manifest.json", "tiny/model.onnx"]);
    for (const line of sums) {
      const [sha, rel] = line.split("  ") as [string, string];
      expect(sha256Hex(await readFile(join(outDir, rel))), rel).toBe(sha);
    }

    // Adding a model is data only: the generated catalog picks the folder up.
    const catalog = renderCatalog(await readCatalogEntries(outDir));
    expect(catalog).toContain('import tiny from "../../models/tiny/manifest.json";');
    expect(catalog).toContain('"ten": tenLabels,');

    // Same id again: refused unless --force.
    await expect(run(tinyArgs("--labels", tenLabels))).rejects.toThrow(/model "tiny" already exists .*--force/);
    const again = await run(tinyArgs("--labels", tenLabels, "--force"));
    expect(again.manifest.output.features).toBeUndefined();
    expect((await readdir(dir)).sort()).toEqual(["manifest.json", "model.onnx", "model.onnx.sha256"]);
  });

  async function expectRejected(args: string[], message: RegExp): Promise<void> {
    await expect(run(args)).rejects.toThrow(message);
    expect(await readdir(outDir)).toEqual([]); // nothing written
  }

  it("rejects a label count that does not match the output", async () => {
    await freshOut("bad-labels");
    await expectRejected(
      tinyArgs("--labels", nineLabels),
      /^output "scores" has 10 values per image \(shape \[1,10,1,1\]\) but the label set "nine" has 9 labels$/,
    );
  });

  it("rejects a 1-channel input", async () => {
    await freshOut("gray");
    const gray = tinyArgs("--labels", tenLabels).map((a) => (a === tinyPath ? oneChannelPath : a));
    await expectRejected(
      [...gray, "--layout", "NCHW"],
      /^input "image" \[N,1,8,8\] has 1 channels in NCHW layout; edgetag feeds 3-channel RGB images$/,
    );
    await expectRejected(
      gray,
      /^input "image" \[N,1,8,8\] has no 3-channel axis .*; edgetag feeds 3-channel RGB images$/,
    );
  });

  it("rejects a crop that does not produce the input size", async () => {
    await freshOut("bad-crop");
    await expectRejected(
      tinyArgs("--labels", tenLabels, "--crop", "6"),
      /^input "image" \[N,3,8,8\] is 8x8 \(WxH\) but the preprocessing yields 6x6 \(check --crop \/ --resize\)$/,
    );
    await expectRejected(
      tinyArgs("--labels", tenLabels, "--crop", "none"),
      /keeps the aspect ratio, so the image size varies/,
    );
  });

  it("rejects probabilities that are not, and logits straight out of a Softmax", async () => {
    await freshOut("bad-kind");
    await expectRejected(
      tinyArgs("--labels", tenLabels, "--output-kind", "probabilities"),
      /^output "scores" does not look like probabilities on the test input .*: use --output-kind logits$/,
    );
    const nsfw = join(ROOT, "models", "mobilenet-v2-nsfw", "model.int8.onnx");
    await expectRejected(
      [
        nsfw,
        "--id",
        "x",
        "--preset",
        "nsfwjs",
        "--output-kind",
        "logits",
        "--trained",
        "--out-dir",
        outDir,
        "--no-upload",
      ],
      /comes out of a Softmax, so it holds probabilities: use --output-kind probabilities/,
    );
  });

  it("requires an explicit --trained or --untrained", async () => {
    await freshOut("no-trained");
    const args = tinyArgs("--labels", tenLabels).filter((a) => a !== "--untrained");
    expect(() => parseImportArgs(args, outDir)).toThrow(/pass exactly one of --trained or --untrained/);
    expect(() => parseImportArgs([...args, "--trained", "--untrained"], outDir)).toThrow(/exactly one/);
  });

  it("the CLI exits 1 with the message on stderr and writes nothing", async () => {
    await freshOut("cli");
    const tsx = join(ROOT, "node_modules", ".bin", "tsx");
    const r = spawnSync(tsx, [join(ROOT, "scripts", "models-import.ts"), ...tinyArgs("--labels", nineLabels)], {
      encoding: "utf8",
      cwd: ROOT,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('models:import: output "scores" has 10 values per image');
    expect(await readdir(outDir)).toEqual([]);
  });
});

describe("generated catalog", () => {
  it("src/models/catalog.generated.ts is what models:catalog generates from models/", async () => {
    expect(await catalogIsCurrent()).toBe(true);
    const text = await readFile(join(ROOT, "src", "models", "catalog.generated.ts"), "utf8");
    expect(text.split("\n")[0]).toBe("// generated by npm run models:import / models:catalog; do not edit");
    for (const id of ["densenet-121", "mobilenet-v2", "mobilenet-v2-nsfw"]) {
      expect(existsSync(join(ROOT, "models", id, "manifest.json"))).toBe(true);
      expect(text).toContain(`"../../models/${id}/manifest.json"`);
    }
  });

  it("a stale file is detected", async () => {
    const dir = await mkdtemp(join(tmpdir(), "edgetag-catalog-"));
    try {
      const file = join(dir, "catalog.generated.ts");
      const current = await readFile(join(ROOT, "src", "models", "catalog.generated.ts"), "utf8");
      await writeFile(
        file,
        current.replace('import densenet121 from "../../models/densenet-121/manifest.json";\n', ""),
      );
      expect(await catalogIsCurrent(undefined, file)).toBe(false);
      await writeFile(file, current);
      expect(await catalogIsCurrent(undefined, file)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
