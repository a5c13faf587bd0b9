// A TypeScript client as another team would write it: openapi-fetch over the types openapi-typescript
// generated (with its defaults) from openapi/openapi.json, type-checked by tsc --strict, then run
// against a live service. It calls every operation and prints one JSON line per answer, which
// tests/integration/test_generated_clients.py checks.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

declare const process: { argv: string[]; exitCode?: number };

type Schemas = components["schemas"];
// Answers read as JSON (application/json, application/problem+json); inference can also answer
// application/octet-stream, read with parseAs "arrayBuffer".
const client = createClient<paths, `${string}/${string}json`>({ baseUrl: process.argv[2] ?? "http://127.0.0.1:8000" });

function report(operation: string, status: number, result: unknown): void {
  console.log(JSON.stringify({ operation, status, result }));
}

function first(tensor: Schemas["NumberTensor"] | number | null | undefined): unknown {
  return Array.isArray(tensor) ? tensor[0] : tensor;
}

async function losses(): Promise<void> {
  // The article's 3-class example and its Fashion-MNIST prediction.
  const seed: Schemas["CrossEntropyRequest"] = { logits: [[-1, 0.5, 2], [-1, 0.5, 3]], target: [1, 2] };
  const ce = await client.POST("/v1/cross-entropy", { body: seed });
  if (ce.data) {
    const answer: Schemas["CrossEntropyResponse"] = ce.data;
    report("cross_entropy", ce.response.status, { loss: answer.loss, count: answer.count, softmax: answer.softmax });
  }
  const fashion = await client.POST("/v1/cross-entropy", {
    body: {
      probabilities: [[0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]],
      target: [4],
    },
  });
  report("cross_entropy_fashion", fashion.response.status, { loss: fashion.data?.loss });
  // A 422: the problem names the field.
  const invalid = await client.POST("/v1/cross-entropy", { body: { logits: [[1, 2]], target: [5] } });
  if (invalid.error) {
    const problem: Schemas["ProblemDetail"] = invalid.error;
    report("cross_entropy_422", invalid.response.status, {
      loc: problem.errors?.[0]?.loc,
      request_id: problem.request_id,
    });
  }
  const bce = await client.POST("/v1/binary-cross-entropy", { body: { logits: [0.5, -1], target: [1, 0] } });
  report("binary_cross_entropy", bce.response.status, { loss: bce.data?.loss, sigmoid: first(bce.data?.sigmoid) });
  const focal = await client.POST("/v1/focal-loss", { body: { logits: [[-1, 0.5, 2]], target: [2] } });
  report("focal_loss", focal.response.status, { loss: focal.data?.loss });
  const softmax = await client.POST("/v1/softmax", { body: { logits: [-1, 0.5, 2] } });
  report("softmax", softmax.response.status, { softmax: softmax.data?.softmax });
  const divergence = await client.POST("/v1/divergence", {
    body: { p: [[0, 0, 1]], q: [[0.25, 0.25, 0.5]], base: "2" },
  });
  report("divergence", divergence.response.status, { cross_entropy: divergence.data?.cross_entropy });
}

const seedInference: Schemas["InferenceRequest"] = {
  inputs: [
    { name: "logits", datatype: "FP64", shape: [2, 3], data: [[-1, 0.5, 2], [-1, 0.5, 3]] },
    { name: "target", datatype: "INT64", shape: [2], data: [1, 2] },
  ],
  outputs: [{ name: "loss" }, { name: "softmax" }],
};

async function inference(): Promise<void> {
  const server = await client.GET("/v2");
  report("v2_server_metadata", server.response.status, { extensions: server.data?.extensions });
  const live = await client.GET("/v2/health/live");
  report("v2_server_live", live.response.status, { live: live.data?.live });
  const ready = await client.GET("/v2/health/ready");
  report("v2_server_ready", ready.response.status, { ready: ready.data?.ready });
  const model = { path: { model_name: "cross_entropy" as const } };
  const version = { path: { model_name: "cross_entropy" as const, model_version: "1" as const } };
  const metadata = await client.GET("/v2/models/{model_name}", { params: model });
  report("v2_model_metadata", metadata.response.status, { inputs: metadata.data?.inputs.map((t) => t.name) });
  const versionMetadata = await client.GET("/v2/models/{model_name}/versions/{model_version}", { params: version });
  report("v2_model_version_metadata", versionMetadata.response.status, { name: versionMetadata.data?.name });
  const modelReady = await client.GET("/v2/models/{model_name}/ready", { params: model });
  report("v2_model_ready", modelReady.response.status, { ready: modelReady.data?.ready });
  const versionReady = await client.GET("/v2/models/{model_name}/versions/{model_version}/ready", { params: version });
  report("v2_model_version_ready", versionReady.response.status, { ready: versionReady.data?.ready });

  const infer = await client.POST("/v2/models/{model_name}/infer", { params: model, body: seedInference });
  if (infer.data) {
    const answer: Schemas["InferenceResponse"] = infer.data;
    report("v2_infer", infer.response.status, { outputs: answer.outputs.map((o) => [o.name, o.data]) });
  }
  const inferVersion = await client.POST("/v2/models/{model_name}/versions/{model_version}/infer", {
    params: version,
    body: seedInference,
  });
  report("v2_infer_version", inferVersion.response.status, { model_version: inferVersion.data?.model_version });
  const unknown = await client.POST("/v2/models/{model_name}/infer", {
    params: model,
    body: { inputs: [{ name: "logits", datatype: "FP64", shape: [1] }] },
  });
  if (unknown.error) {
    const problem: Schemas["InferenceProblem"] | Schemas["ProblemDetail"] = unknown.error;
    report("v2_infer_400", unknown.response.status, { error: "error" in problem ? problem.error : null });
  }

  // Binary outputs: the JSON header, then the raw little-endian tensors.
  const binary = await client.POST("/v2/models/{model_name}/infer", {
    params: model,
    body: { ...seedInference, parameters: { binary_data_output: true } },
    parseAs: "arrayBuffer",
  });
  const bytes = binary.data;
  const length = Number(binary.response.headers.get("Inference-Header-Content-Length"));
  if (bytes instanceof ArrayBuffer) {
    const header = JSON.parse(new TextDecoder().decode(bytes.slice(0, length))) as Schemas["InferenceResponse"];
    const loss = new Float64Array(bytes.slice(length, length + 8))[0];
    report("v2_infer_binary", binary.response.status, {
      content_type: binary.response.headers.get("content-type"),
      outputs: header.outputs.map((o) => o.name),
      loss,
    });
  }
}

async function operations(): Promise<void> {
  const live = await client.GET("/health/live");
  report("health_live", live.response.status, { status: live.data?.status });
  const ready = await client.GET("/health/ready");
  report("health_ready", ready.response.status, { status: ready.data?.status });
  const metrics = await client.GET("/metrics", { parseAs: "text" });
  const text: string | undefined = metrics.data;
  report("metrics", metrics.response.status, { has_requests: text?.includes("xent_requests_total") ?? false });
}

try {
  await losses();
  await inference();
  await operations();
} catch (error) {
  console.log(JSON.stringify({ operation: "crash", status: 0, result: String(error) }));
  process.exitCode = 1;
}
