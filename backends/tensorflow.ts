/**
 * The `tensorflow` backend's loading path: `@tensorflow/tfjs-node-gpu` (libtensorflow with
 * CUDA), falling back to `@tensorflow/tfjs-node` (libtensorflow on the CPU).
 *
 * Both packages are npm dependencies, but their install script (which downloads libtensorflow
 * and the prebuilt `tfjs_binding.node` from storage.googleapis.com) is denied in `deno.json`:
 * it fails where there is no internet. So the package folders exist without the pieces that
 * make them work, and this module checks each piece before anything is imported, naming the
 * first one missing and how to install it, in one line.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { UsageError } from "../core/errors.ts";

/** The two packages, preferred first. */
export const TFJS_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;

/** One of {@linkcode TFJS_NODE_PACKAGES}. */
export type TfjsNodePackage = typeof TFJS_NODE_PACKAGES[number];

/** The libtensorflow version tfjs-node 4.22.0 links (its `scripts/deps-constants.js`). */
export const LIBTENSORFLOW_VERSION = "2.9.1";

/** The CUDA libraries libtensorflow 2.9's GPU build loads (CUDA 11.2, cuDNN 8.1). */
export const CUDA_LIBRARIES = ["libcudart.so.11.0", "libcudnn.so.8"] as const;

/** What is on disk for one package; each field null where that piece is missing. */
export interface TfjsNodeProbe {
  package: TfjsNodePackage;
  /** The package folder (null: not installed). */
  dir: string | null;
  /** `lib/napi-v<N>/tfjs_binding.node` (null: not built or downloaded). */
  binding: string | null;
  /** `libtensorflow.so*` beside the binding or in `deps/lib` (null: not downloaded). */
  libtensorflow: string | null;
  /** For the GPU package: the first CUDA library that does not load (null: all load). */
  cudaMissing: string | null;
}

/** The file-system reads {@linkcode probeTfjsNode} makes, replaceable in tests. */
export interface ProbeFs {
  /** Names in a folder, or [] where it does not exist. */
  list(dir: string): string[];
  /** Whether a shared library loads (dlopen), for the CUDA check. */
  loads(library: string): boolean;
}

const realFs: ProbeFs = {
  list(dir) {
    try {
      return [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch {
      return [];
    }
  },
  loads(library) {
    try {
      Deno.dlopen(library, {}).close();
      return true;
    } catch {
      return false;
    }
  },
};

/** The folder of an installed npm package (from its resolved main entry), or null. */
function packageDir(name: TfjsNodePackage, fs: ProbeFs): string | null {
  let main: string;
  try {
    main = decodeURIComponent(new URL(import.meta.resolve(name)).pathname);
  } catch {
    return null;
  }
  // main is <dir>/dist/index.js
  const dir = main.slice(0, main.lastIndexOf("/dist/"));
  return fs.list(dir).includes("package.json") ? dir : null;
}

/**
 * Look for each piece of `name` on disk.
 *
 * @param name the package
 * @param fs the reads (the real file system unless testing)
 * @param dir the package folder, when known (default: resolved through the import map)
 * @returns what was found
 * @example
 * ```ts
 * const probe = probeTfjsNode("@tensorflow/tfjs-node");
 * probe.libtensorflow; // null where the install script did not run
 * ```
 */
export function probeTfjsNode(
  name: TfjsNodePackage,
  fs: ProbeFs = realFs,
  dir: string | null = packageDir(name, fs),
): TfjsNodeProbe {
  const probe: TfjsNodeProbe = {
    package: name,
    dir,
    binding: null,
    libtensorflow: null,
    cudaMissing: null,
  };
  if (dir == null) return probe;
  const isLib = (f: string) => /^(lib)?tensorflow(\.so.*|\.dylib|\.dll)$/.test(f);
  for (const napi of fs.list(`${dir}/lib`).filter((d) => d.startsWith("napi-v")).sort()) {
    const files = fs.list(`${dir}/lib/${napi}`);
    if (files.includes("tfjs_binding.node")) probe.binding = `${dir}/lib/${napi}/tfjs_binding.node`;
    const lib = files.find(isLib);
    if (lib) probe.libtensorflow = `${dir}/lib/${napi}/${lib}`;
  }
  const deps = fs.list(`${dir}/deps/lib`).find(isLib);
  if (probe.libtensorflow == null && deps) probe.libtensorflow = `${dir}/deps/lib/${deps}`;
  if (name === "@tensorflow/tfjs-node-gpu") {
    probe.cudaMissing = CUDA_LIBRARIES.find((lib) => !fs.loads(lib)) ?? null;
  }
  return probe;
}

/**
 * The first missing piece of a probed package, as a clause, or null when nothing is missing.
 *
 * @param probe from {@linkcode probeTfjsNode}
 * @returns e.g. `libtensorflow is missing (…)`
 * @example
 * ```ts
 * missingPiece(probeTfjsNode("@tensorflow/tfjs-node"));
 * ```
 */
export function missingPiece(probe: TfjsNodeProbe, detail = true): string | null {
  const short = probe.package.slice("@tensorflow/".length);
  const where = (what: string) => detail ? ` (${what})` : "";
  const dir = probe.dir == null ? "" : shortPath(probe.dir);
  if (probe.dir == null) return `${short} is not installed${where("run `deno task deps`")}`;
  if (probe.libtensorflow == null) {
    return `libtensorflow ${LIBTENSORFLOW_VERSION} is missing${
      where(`no libtensorflow.so* in ${dir}/deps/lib or ${dir}/lib/napi-v*`)
    }`;
  }
  if (probe.binding == null) {
    return `the ${short} binding is missing${where(`no ${dir}/lib/napi-v*/tfjs_binding.node`)}`;
  }
  if (probe.cudaMissing != null) {
    return `CUDA is missing${
      where(
        `${probe.cudaMissing} does not load: libtensorflow ${LIBTENSORFLOW_VERSION}'s GPU build needs CUDA 11.2 and cuDNN 8.1 on the library path`,
      )
    }`;
  }
  return null;
}

/** `path` relative to the working folder where it lies inside it. */
function shortPath(path: string): string {
  let cwd: string;
  try {
    cwd = Deno.cwd();
  } catch {
    return path;
  }
  return path.startsWith(`${cwd}/`) ? path.slice(cwd.length + 1) : path;
}

/**
 * Which package `--backend tensorflow` loads, or the one-line reason it cannot.
 *
 * The GPU package wins where complete; else the CPU package where complete; else the
 * reason names the CPU package's first missing piece (the fallback every machine can have),
 * the GPU package's, and how to install both.
 *
 * @param gpu probe of `@tensorflow/tfjs-node-gpu`
 * @param cpu probe of `@tensorflow/tfjs-node`
 * @returns the package and a note, or the reason
 * @example
 * ```ts
 * const choice = chooseTfjsNode(
 *   probeTfjsNode("@tensorflow/tfjs-node-gpu"),
 *   probeTfjsNode("@tensorflow/tfjs-node"),
 * );
 * ```
 */
export function chooseTfjsNode(
  gpu: TfjsNodeProbe,
  cpu: TfjsNodeProbe,
): { ok: true; package: TfjsNodePackage; note: string } | { ok: false; reason: string } {
  if (missingPiece(gpu) == null) {
    return { ok: true, package: gpu.package, note: "tfjs-node-gpu (CUDA)" };
  }
  const gpuMissing = missingPiece(gpu, false);
  const cpuMissing = missingPiece(cpu);
  if (cpuMissing == null) {
    return {
      ok: true,
      package: cpu.package,
      note: `tfjs-node (CPU; tfjs-node-gpu: ${gpuMissing})`,
    };
  }
  return {
    ok: false,
    reason: `${cpuMissing}; tfjs-node-gpu: ${gpuMissing}. ` +
      `Install with \`deno install --allow-scripts=npm:@tensorflow/tfjs-node\` ` +
      `(or npm:@tensorflow/tfjs-node-gpu; downloads libtensorflow and the prebuilt binding, ` +
      `TFJS_NODE_BASE_URI names a mirror), or unpack libtensorflow ${LIBTENSORFLOW_VERSION} ` +
      `into node_modules/@tensorflow/tfjs-node/deps and build the binding with ` +
      `\`npm rebuild @tensorflow/tfjs-node --build-addon-from-source\``,
  };
}

/**
 * Whether `--backend tensorflow` can load here.
 *
 * @returns null where it can, else why not (one line)
 * @example
 * ```ts
 * tensorflowAvailability();
 * ```
 */
export function tensorflowAvailability(): string | null {
  const choice = chooseTfjsNode(
    probeTfjsNode("@tensorflow/tfjs-node-gpu"),
    probeTfjsNode("@tensorflow/tfjs-node"),
  );
  return choice.ok ? null : choice.reason;
}

/**
 * Load tfjs-node-gpu or tfjs-node and make its `tensorflow` backend active.
 *
 * @returns which package was loaded, with a note
 * @throws UsageError naming the missing piece and the fix, in one line
 * @example
 * ```ts
 * const { note } = await loadTensorflowBackend();
 * ```
 */
export async function loadTensorflowBackend(): Promise<{ package: TfjsNodePackage; note: string }> {
  const choice = chooseTfjsNode(
    probeTfjsNode("@tensorflow/tfjs-node-gpu"),
    probeTfjsNode("@tensorflow/tfjs-node"),
  );
  if (!choice.ok) throw new UsageError(`Cannot use --backend tensorflow: ${choice.reason}`);
  try {
    if (choice.package === "@tensorflow/tfjs-node-gpu") await import("@tensorflow/tfjs-node-gpu");
    else await import("@tensorflow/tfjs-node");
  } catch (e) {
    // dlopen's own line names the library that did not load.
    const first = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new UsageError(
      `Cannot use --backend tensorflow: ${choice.package} did not load: ${first}`,
    );
  }
  if (!(await tf.setBackend("tensorflow"))) {
    throw new UsageError(
      `Cannot use --backend tensorflow: ${choice.package} loaded but its backend did not initialise`,
    );
  }
  await tf.ready();
  return { package: choice.package, note: choice.note };
}
