import assert from "node:assert/strict";
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { readRankEnv } from "../comm/rank_env.ts";
import { reportResult } from "../comm/report_result.ts";

Deno.test("without RANK, a process is rank 0 of a world of one", async () => {
  assert.deepEqual(readRankEnv({ env: {} }), {
    rank: 0,
    worldSize: 1,
    localRank: 0,
    rendezvousDir: null,
    token: null,
    collectiveTimeoutMs: null,
  });
  const group = await initProcessGroupFromEnv({ env: {} });
  assert.equal(group.worldSize, 1);
  group.close();
  assert.equal(await reportResult({ ok: true }, { env: {} }), false);
});

Deno.test("a launched rank reads every variable in one place", () => {
  const env = {
    RANK: "2",
    WORLD_SIZE: "4",
    LOCAL_RANK: "2",
    PARATRAIN_RENDEZVOUS: "/tmp/x",
    PARATRAIN_TOKEN: "ab".repeat(32),
    PARATRAIN_COLLECTIVE_TIMEOUT_MS: "5000",
  };
  assert.deepEqual(readRankEnv({ env }), {
    rank: 2,
    worldSize: 4,
    localRank: 2,
    rendezvousDir: "/tmp/x",
    token: "ab".repeat(32),
    collectiveTimeoutMs: 5000,
    masterAddr: null,
    masterPort: null,
    transport: "unix",
    bind: null,
    source: "paratrain",
  });
});

Deno.test("invalid or missing variables are named in the error", () => {
  const base = { RANK: "0", WORLD_SIZE: "2", PARATRAIN_RENDEZVOUS: "/tmp/x", PARATRAIN_TOKEN: "t" };
  assert.throws(
    () => readRankEnv({ env: { ...base, WORLD_SIZE: "two" } }),
    /Invalid environment variable WORLD_SIZE: expected an integer ≥ 1, got "two"/,
  );
  assert.throws(
    () => readRankEnv({ env: { ...base, RANK: "2" } }),
    /Invalid environment variable RANK: 2 is not below WORLD_SIZE=2/,
  );
  assert.throws(
    () => readRankEnv({ env: { ...base, PARATRAIN_TOKEN: undefined } }),
    /Missing environment variable PARATRAIN_TOKEN/,
  );
});
