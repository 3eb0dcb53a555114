/**
 * A link's latency and bandwidth, fitted to the all-reduce benchmark's rows: the α–β model of a
 * ring all-reduce (Hockney; Thakur, Rabenseifner and Gropp, "Optimization of Collective
 * Communication Operations in MPICH", 2005). A ring all-reduce of `bytes` over `n` ranks is
 * 2(n−1) steps, each sending one message of bytes/n to the right neighbour while receiving one
 * from the left, so
 *
 * ```
 * time = 2(n−1)·α + 2(n−1)/n · bytes / β
 * ```
 *
 * with α the cost of one message (the link's latency plus the software's cost per message) and
 * β the bytes per second one link carries. Fitting `time = a + b·bytes` gives
 * α = a / 2(n−1) and β = 2(n−1) / (n·b).
 *
 * The fit is least squares on relative error (each row weighted by 1/time²), so that the
 * small messages, whose times are thousands of times shorter, weigh as much as the large ones;
 * `residual` is the root mean square of the rows' relative errors against the fitted line.
 *
 * @module
 */

/** The α–β model of one transport at one world size, as `allreduce.json` stores it. */
export interface LinkModel {
  /** `unix`, `tcp`, or a link given by hand (`predict --link`). */
  transport: string;
  /** Ranks in the ring it was fitted at (0 for a link given by hand: any world size). */
  worldSize: number;
  /** α: the cost of one message, µs. */
  alphaUs: number;
  /** β: what one link carries, GB/s (10⁹ bytes per second). */
  betaGBps: number;
  /** Root mean square of the rows' relative errors against the fit (0.05: 5%); 0 by hand. */
  residual: number;
}

/** The rows a fit reads: one all-reduce's size and time. */
export interface TimedSize {
  transport: string;
  worldSize: number;
  bytes: number;
  usPerOp: number;
}

/**
 * Fits α and β per transport and world size.
 *
 * @param rows in-place all-reduce rows (at least two sizes per transport and world size;
 *   groups with fewer are left out)
 * @returns one model per (transport, world size), in the order first seen
 * @example
 * ```ts
 * fitLinkModels([
 *   { transport: "tcp", worldSize: 2, bytes: 1e3, usPerOp: 22 },
 *   { transport: "tcp", worldSize: 2, bytes: 1e6, usPerOp: 1020 },
 * ]); // [{ transport: "tcp", worldSize: 2, alphaUs: ≈10, betaGBps: ≈1, residual: ≈0 }]
 * ```
 */
export function fitLinkModels(rows: TimedSize[]): LinkModel[] {
  const groups = new Map<string, TimedSize[]>();
  for (const row of rows) {
    const key = `${row.transport}/${row.worldSize}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const models: LinkModel[] = [];
  for (const group of groups.values()) {
    const { transport, worldSize: n } = group[0];
    const line = fitLine(group.map((r) => [r.bytes, r.usPerOp]));
    // A slope of zero or below (all sizes equally fast) says nothing of the bandwidth.
    if (!line || n < 2 || line.slope <= 0) continue;
    const steps = 2 * (n - 1);
    const bytesPerUs = steps / (n * line.slope);
    models.push({
      transport,
      worldSize: n,
      alphaUs: Math.max(0, line.intercept) / steps,
      betaGBps: bytesPerUs * 1e6 / 1e9,
      residual: line.residual,
    });
  }
  return models;
}

/**
 * Weighted least squares of y = a + b·x with weights 1/y² (relative error).
 *
 * @returns the line and the RMS relative residual, or null with fewer than two distinct x
 */
function fitLine(
  points: [number, number][],
): { intercept: number; slope: number; residual: number } | null {
  if (new Set(points.map(([x]) => x)).size < 2) return null;
  let sw = 0, swx = 0, swy = 0, swxx = 0, swxy = 0;
  for (const [x, y] of points) {
    const w = 1 / (y * y);
    sw += w;
    swx += w * x;
    swy += w * y;
    swxx += w * x * x;
    swxy += w * x * y;
  }
  const det = sw * swxx - swx * swx;
  const slope = (sw * swxy - swx * swy) / det;
  const intercept = (swy - slope * swx) / sw;
  const squares = points.reduce((s, [x, y]) => s + ((intercept + slope * x - y) / y) ** 2, 0);
  return { intercept, slope, residual: Math.sqrt(squares / points.length) };
}

/**
 * The time the model gives a ring all-reduce, µs.
 *
 * @param model the link
 * @param n ranks in the ring
 * @param bytes bytes each rank contributes (on the wire: after any compression)
 * @returns the time, µs (0 for one rank)
 * @example
 * ```ts
 * ringAllReduceUs({ transport: "tcp", worldSize: 2, alphaUs: 10, betaGBps: 1, residual: 0 }, 2, 1e6); // 1020
 * ```
 */
export function ringAllReduceUs(model: LinkModel, n: number, bytes: number): number {
  if (n < 2) return 0;
  const steps = 2 * (n - 1);
  return steps * model.alphaUs + (steps / n) * bytes / (model.betaGBps * 1e3);
}
