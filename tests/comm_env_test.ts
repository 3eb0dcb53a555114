import assert from "node:assert/strict";
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { DEFAULT_MASTER_PORT, firstSlurmHost, rankSource, readRankEnv } from "../comm/rank_env.ts";
import { reportResult } from "../comm/report_result.ts";

Deno.test("without RANK, a process is rank 0 of a world of one", async () => {
  assert.deepEqual(readRankEnv({ env: {} }), {
    rank: 0,
    worldSize: 1,
    localRank: 0,
    localWorldSize: 1,
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
    LOCAL_WORLD_SIZE: "4",
    PARATRAIN_RENDEZVOUS: "/tmp/x",
    PARATRAIN_TOKEN: "ab".repeat(32),
    PARATRAIN_COLLECTIVE_TIMEOUT_MS: "5000",
  };
  assert.deepEqual(readRankEnv({ env }), {
    rank: 2,
    worldSize: 4,
    localRank: 2,
    localWorldSize: 4,
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
    /Invalid environment variable WORLD_SIZE: expected an integer ≥ 1, got "two" \(decimal digits only/,
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

const SECRET = "0123456789abcdef".repeat(4);

Deno.test("torchrun and Kubernetes: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT", () => {
  const env = readRankEnv({
    env: {
      RANK: "3",
      WORLD_SIZE: "4",
      LOCAL_RANK: "1",
      MASTER_ADDR: "trainer-0.job",
      MASTER_PORT: "23456",
      PARATRAIN_TOKEN: SECRET,
    },
  });
  assert.deepEqual(
    [env.source, env.rank, env.worldSize, env.localRank, env.masterAddr, env.masterPort],
    ["torchrun", 3, 4, 1, "trainer-0.job", 23456],
  );
  assert.equal(env.rendezvousDir, null);
  assert.equal(env.transport, "unix");
  assert.throws(
    () => readRankEnv({ env: { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "h", MASTER_PORT: "1" } }),
    /Missing environment variable PARATRAIN_TOKEN/,
  );
});

Deno.test("Open MPI: OMPI_COMM_WORLD_*, MASTER_ADDR defaulting to loopback on one host", () => {
  const base = {
    OMPI_COMM_WORLD_RANK: "1",
    OMPI_COMM_WORLD_SIZE: "2",
    OMPI_COMM_WORLD_LOCAL_RANK: "1",
    OMPI_COMM_WORLD_LOCAL_SIZE: "2",
    PARATRAIN_TOKEN: SECRET,
  };
  const env = readRankEnv({ env: base });
  assert.deepEqual(
    [env.source, env.rank, env.worldSize, env.localRank, env.masterAddr, env.masterPort],
    ["openmpi", 1, 2, 1, "127.0.0.1", DEFAULT_MASTER_PORT],
  );
  const across = { ...base, OMPI_COMM_WORLD_SIZE: "4", OMPI_COMM_WORLD_RANK: "3" };
  assert.throws(() => readRankEnv({ env: across }), /Missing environment variable MASTER_ADDR/);
  const named = readRankEnv({
    env: { ...across, MASTER_ADDR: "10.213.0.1", MASTER_PORT: "4000", PARATRAIN_TRANSPORT: "tcp" },
  });
  assert.deepEqual([named.rank, named.masterAddr, named.masterPort, named.transport], [
    3,
    "10.213.0.1",
    4000,
    "tcp",
  ]);
});

Deno.test("SLURM: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the master from the node list", () => {
  const env = readRankEnv({
    env: {
      SLURM_PROCID: "5",
      SLURM_NTASKS: "6",
      SLURM_LOCALID: "1",
      SLURM_JOB_NODELIST: "node[01-03],other",
      PARATRAIN_TOKEN: SECRET,
    },
  });
  assert.deepEqual(
    [env.source, env.rank, env.worldSize, env.localRank, env.masterAddr, env.masterPort],
    ["slurm", 5, 6, 1, "node01", DEFAULT_MASTER_PORT],
  );
  const given = readRankEnv({
    env: {
      SLURM_PROCID: "0",
      SLURM_NTASKS: "2",
      SLURM_JOB_NODELIST: "node[01-03]",
      MASTER_ADDR: "login7",
      PARATRAIN_TOKEN: SECRET,
    },
  });
  assert.equal(given.masterAddr, "login7");
});

Deno.test("the first host of SLURM node lists, compressed or not", () => {
  const cases: [string, string][] = [
    ["node[01-03],other", "node01"],
    ["other,node[01-03]", "other"],
    ["gpu[7,9-12]", "gpu7"],
    ["rack[2-3]-n[08-09]", "rack2-n08"],
    ["login1", "login1"],
    [" a[10-11] ", "a10"],
  ];
  for (const [list, first] of cases) assert.equal(firstSlurmHost(list), first, list);
  for (const bad of ["", "n[1-", "n]1[", "[1-2]]"]) {
    assert.throws(() => firstSlurmHost(bad), /SLURM_JOB_NODELIST: cannot read a host/, bad);
  }
});

Deno.test("who names the rank: our launcher, then RANK, then Open MPI, then SLURM", () => {
  assert.equal(rankSource({}), null);
  assert.equal(rankSource({ RANK: "0", PARATRAIN_RENDEZVOUS: "/tmp/x" }), "paratrain");
  assert.equal(rankSource({ RANK: "0", OMPI_COMM_WORLD_RANK: "0" }), "torchrun");
  assert.equal(rankSource({ OMPI_COMM_WORLD_RANK: "0", SLURM_PROCID: "0" }), "openmpi");
  assert.equal(rankSource({ SLURM_PROCID: "0", SLURM_NTASKS: "1" }), "slurm");
  // A batch script's own environment (SLURM_PROCID without SLURM_NTASKS) is no rank.
  assert.equal(rankSource({ SLURM_PROCID: "0" }), null);
});

Deno.test("every integer variable is digits only: 0x1, 1e1, spaces and signs are refused", () => {
  const torchrun = {
    RANK: "0",
    WORLD_SIZE: "2",
    LOCAL_RANK: "0",
    LOCAL_WORLD_SIZE: "2",
    MASTER_ADDR: "h",
    MASTER_PORT: "29500",
    PARATRAIN_TOKEN: SECRET,
    PARATRAIN_COLLECTIVE_TIMEOUT_MS: "1000",
  };
  const ompi = {
    OMPI_COMM_WORLD_RANK: "0",
    OMPI_COMM_WORLD_SIZE: "2",
    OMPI_COMM_WORLD_LOCAL_RANK: "0",
    OMPI_COMM_WORLD_LOCAL_SIZE: "2",
    PARATRAIN_TOKEN: SECRET,
  };
  const slurm = {
    SLURM_PROCID: "0",
    SLURM_NTASKS: "2",
    SLURM_LOCALID: "0",
    SLURM_NTASKS_PER_NODE: "2",
    SLURM_JOB_NODELIST: "n1",
    PARATRAIN_TOKEN: SECRET,
  };
  const cases: [Record<string, string>, string][] = [
    ...Object.keys(torchrun).filter((k) => k !== "MASTER_ADDR" && k !== "PARATRAIN_TOKEN")
      .map((k) => [torchrun, k] as [Record<string, string>, string]),
    ...Object.keys(ompi).filter((k) => k !== "PARATRAIN_TOKEN")
      .map((k) => [ompi, k] as [Record<string, string>, string]),
    ...["SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"]
      .map((k) => [slurm, k] as [Record<string, string>, string]),
  ];
  for (const [base, name] of cases) {
    readRankEnv({ env: base }); // the base is fine
    for (const bad of ["0x1", "1e1", " 1", "1 ", "+1", "-0", "1.0", "", "١"]) {
      assert.throws(
        () => readRankEnv({ env: { ...base, [name]: bad } }),
        new RegExp(`Invalid environment variable ${name}: expected an integer .*got "`),
        `${name}=${JSON.stringify(bad)}`,
      );
    }
  }
});

Deno.test("the ranks on this host come from the scheduler's local size, not the job's", () => {
  const torchrun = readRankEnv({
    env: {
      RANK: "0",
      WORLD_SIZE: "16",
      LOCAL_RANK: "0",
      LOCAL_WORLD_SIZE: "1",
      MASTER_ADDR: "h",
      PARATRAIN_TOKEN: SECRET,
    },
  });
  assert.deepEqual([torchrun.worldSize, torchrun.localWorldSize], [16, 1]);
  // Kubernetes starts one rank per pod and says nothing of local sizes: this rank alone.
  const pod = readRankEnv({
    env: { RANK: "9", WORLD_SIZE: "16", MASTER_ADDR: "h", PARATRAIN_TOKEN: SECRET },
  });
  assert.equal(pod.localWorldSize, 1);
  const ompi = readRankEnv({
    env: {
      OMPI_COMM_WORLD_RANK: "5",
      OMPI_COMM_WORLD_SIZE: "16",
      OMPI_COMM_WORLD_LOCAL_RANK: "1",
      OMPI_COMM_WORLD_LOCAL_SIZE: "2",
      MASTER_ADDR: "h",
      PARATRAIN_TOKEN: SECRET,
    },
  });
  assert.deepEqual([ompi.worldSize, ompi.localWorldSize], [16, 2]);
  const slurm = (extra: Record<string, string>) =>
    readRankEnv({
      env: {
        SLURM_PROCID: "3",
        SLURM_NTASKS: "7",
        SLURM_LOCALID: "1",
        SLURM_JOB_NODELIST: "n[1-4]",
        PARATRAIN_TOKEN: SECRET,
        ...extra,
      },
    }).localWorldSize;
  assert.equal(slurm({ SLURM_NTASKS_PER_NODE: "2" }), 2);
  assert.equal(slurm({ SLURM_STEP_TASKS_PER_NODE: "2(x3),1" }), 2);
  assert.equal(slurm({ SLURM_TASKS_PER_NODE: "1,3(x2)" }), 3);
  assert.equal(slurm({}), 1);
  assert.throws(
    () => slurm({ SLURM_TASKS_PER_NODE: "2(x3" }),
    /Invalid environment variable SLURM_TASKS_PER_NODE: expected task counts such as 2\(x3\),1/,
  );
  assert.throws(
    () =>
      readRankEnv({
        env: {
          RANK: "0",
          WORLD_SIZE: "2",
          LOCAL_RANK: "2",
          LOCAL_WORLD_SIZE: "2",
          MASTER_ADDR: "h",
          PARATRAIN_TOKEN: SECRET,
        },
      }),
    /Invalid environment variable LOCAL_RANK: 2 is not below LOCAL_WORLD_SIZE=2/,
  );
  assert.throws(
    () =>
      readRankEnv({
        env: {
          RANK: "0",
          WORLD_SIZE: "2",
          LOCAL_WORLD_SIZE: "4",
          MASTER_ADDR: "h",
          PARATRAIN_TOKEN: SECRET,
        },
      }),
    /Invalid environment variable LOCAL_WORLD_SIZE: 4 ranks on this host, more than WORLD_SIZE=2/,
  );
});

Deno.test("a scheduler's secret shorter than 16 characters is refused when the rank is read", () => {
  for (
    const env of [
      { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "h", PARATRAIN_TOKEN: "short" },
      { OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_SIZE: "2", PARATRAIN_TOKEN: "x".repeat(15) },
      { SLURM_PROCID: "0", SLURM_NTASKS: "2", SLURM_JOB_NODELIST: "n1", PARATRAIN_TOKEN: "x" },
    ]
  ) {
    assert.throws(
      () => readRankEnv({ env }),
      /Invalid environment variable PARATRAIN_TOKEN: expected at least 16 characters/,
    );
  }
});
