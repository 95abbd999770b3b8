import { z } from "zod";

/**
 * A model is data, not code: everything that differs between classifiers
 * (file, tensor names, layout, preprocessing, labels, output kind) is declared
 * here and validated with zod when the registry loads it.
 */
export const ResizeSpec = z.discriminatedUnion("mode", [
  // torchvision Resize(size): the shorter side becomes `size`, the longer side
  // is int(size * long / short) (truncated, as torchvision does).
  z.object({ mode: z.literal("shortest-edge"), size: z.number().int().positive() }),
  // Resize straight to width x height, ignoring aspect ratio (e.g. TF.js models).
  z.object({ mode: z.literal("exact"), width: z.number().int().positive(), height: z.number().int().positive() }),
]);

export const PreprocessSpec = z.object({
  resize: ResizeSpec,
  /**
   * Resampling filter. "bilinear" / "bicubic": antialiased like PIL / torchvision
   * antialias=True when downscaling. "bilinear-tf-align-corners": TensorFlow.js
   * `tf.image.resizeBilinear(img, size, alignCorners=true)` (halfPixelCenters=false),
   * i.e. plain 2-tap interpolation with no antialiasing, corner pixels mapped onto
   * corner pixels, and the normalisation applied to the pixels *before* the
   * resize — exactly what nsfwjs does (`img.toFloat().div(255)` then resize).
   */
  filter: z.enum(["bilinear", "bicubic", "bilinear-tf-align-corners"]).default("bilinear"),
  /** Centre crop after resize (torchvision CenterCrop); omitted = no crop. */
  crop: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }).optional(),
  /** pixel' = (pixel * rescale - mean[c]) / std[c] */
  rescale: z.number().positive(),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
});

export const ModelManifest = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/),
  version: z.string().min(1),
  name: z.string(),
  description: z.string(),
  architecture: z.string(),
  /** false = deterministic untrained weights: the plumbing is real, the labels are not meaningful. */
  trained: z.boolean(),
  license: z.string(),
  source: z.string(),
  file: z.object({
    r2Key: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().positive(),
  }),
  input: z.object({
    name: z.string(),
    layout: z.enum(["NCHW", "NHWC"]),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
  }),
  preprocess: PreprocessSpec,
  output: z.object({
    name: z.string(),
    /** logits get a softmax; probabilities are used as they are. */
    kind: z.enum(["logits", "probabilities"]),
    /**
     * The pooled penultimate feature vector (what Keras calls include_top=False),
     * exposed as a second graph output so any model can serve embeddings.
     * Omitted = the model cannot embed.
     */
    features: z.object({ name: z.string(), dim: z.number().int().positive() }).optional(),
  }),
  /** Name of a label file under models/labels/ (without .json). */
  labels: z.string(),
  numClasses: z.number().int().positive(),
  stats: z.object({ parameters: z.number().int().positive(), macs: z.number().int().positive() }),
  quantization: z.object({
    scheme: z.string(),
    weights: z.string(),
    activations: z.string(),
  }),
  /**
   * onnxruntime session config entries this model is served with (keys as
   * in onnxruntime_session_options_config_keys.h), plus why. Chosen per model
   * by measurement, e.g. "session.disable_quant_qdq": "1" makes ORT fold a
   * weight-only model's DequantizeLinear nodes into fp32 weights at load
   * (exactly the fp32 graph) instead of dequantising on every run; for a QDQ
   * model it would switch the int8 kernels off.
   */
  runtime: z
    .object({
      sessionConfig: z.record(z.string().regex(/^session\.[a-z0-9_.]+$/), z.string()),
      /**
       * The level ORT optimises the graph at while creating the session
       * (default "all"). A file whose graph onnxruntime-node already optimised
       * (`npm run models:preoptimize`) is served with "disabled": the passes
       * would only redo offline work in every cold isolate (DenseNet-121 in
       * workerd: session creation ~220 ms, against 350-460 ms for its QDQ file
       * at "all").
       */
      graphOptimizationLevel: z.enum(["disabled", "basic", "extended", "all"]).optional(),
      /**
       * Kernels to compile and heat before this model's first session is
       * built. "int8": a small QDQ graph (QLinearConv 3x3 and 1x1, uint8
       * MaxPool) for models whose graph runs onnxruntime's integer kernels;
       * see warmUpInt8() in src/inference/ort.ts.
       */
      warmup: z.enum(["int8"]).optional(),
      /**
       * Set when the served file is onnxruntime-node's optimised graph of
       * another file, kept in the repository: the file it was made from (repo
       * path and sha256) and how. An optimised graph has lost what its int8
       * ranges made redundant (e.g. a Relu before a uint8 QuantizeLinear), so
       * tools that need the fp32 network (the benchmark's fp32 twin) start
       * from `from` instead.
       */
      preoptimized: z
        .object({
          from: z.string(),
          sha256: z.string().regex(/^[0-9a-f]{64}$/),
          by: z.string(),
        })
        .optional(),
      why: z.string(),
    })
    .optional(),
  /**
   * Measured agreement figures, written by the tools that produced the file
   * (models:quantize, the parity test's report). Free-form per section so a new
   * measurement never needs a code change; users see it in GET /v1/models/:id.
   */
  fidelity: z.record(z.string(), z.unknown()).optional(),
});

export type ResizeSpec = z.infer<typeof ResizeSpec>;
export type PreprocessSpec = z.infer<typeof PreprocessSpec>;
export type ModelManifest = z.infer<typeof ModelManifest>;
