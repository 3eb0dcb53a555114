/**
 * A DDP gradient group over a {@linkcode ProcessGroup}: the flat gradient is cut into
 * buckets of at most `bucketBytes` (PyTorch's `bucket_cap_mb`), each all-reduced to the mean.
 *
 * @module
 */
import type { ProcessGroup } from "../comm/process_group.ts";
import type { CollectiveTiming, GradientGroup } from "./_replica_loop.ts";

/** Options for {@linkcode bucketedGroup}. */
export interface BucketedGroupOptions {
  /**
   * False for the ceiling run: ranks keep their rank and shard and stay in lock-step (one
   * barrier per step, no data), but exchange no gradients — so the run measures what N
   * processes computing at the same time can give on this machine. Lock-step matters on
   * shared cores: ranks left to drift apart overlap their compute less and look faster than
   * any synchronous data-parallel schedule can be.
   */
  communicate?: boolean;
}

/**
 * @param pg the process group
 * @param bucketBytes bucket cap in bytes
 * @param options see {@linkcode BucketedGroupOptions}
 * @returns the group the replica loop uses
 */
export function bucketedGroup(
  pg: ProcessGroup,
  bucketBytes: number,
  options: BucketedGroupOptions = {},
): GradientGroup {
  const { communicate = true } = options;
  const bucketFloats = Math.max(1, Math.floor(bucketBytes / Float32Array.BYTES_PER_ELEMENT));
  return {
    rank: pg.rank,
    worldSize: pg.worldSize,
    async allReduceMean(buf): Promise<CollectiveTiming> {
      const total = { bytes: 0, waitMs: 0, transferMs: 0 };
      if (!communicate) {
        await pg.barrier();
        return total;
      }
      for (let start = 0; start < buf.length; start += bucketFloats) {
        const bucket = buf.subarray(start, Math.min(buf.length, start + bucketFloats));
        const s = await pg.allReduce(bucket, { op: "avg" });
        total.bytes += s.bytes;
        total.waitMs += s.waitMs;
        total.transferMs += s.transferMs;
      }
      return total;
    },
    async broadcast(buf) {
      if (communicate) await pg.broadcast(buf);
    },
  };
}
