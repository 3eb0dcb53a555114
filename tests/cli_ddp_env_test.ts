/**
 * Bad DDP input that lives in the environment or in files (a scheduler's variables, a job
 * secret): one clear line and exit 2, before any process starts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const SECRET = "0123456789abcdef".repeat(4);

/** Runs the CLI with only `env` (and what Deno itself needs) in its environment. */
async function cli(args: string[], env: Record<string, string>) {
  const keep = ["PATH", "HOME", "DENO_DIR", "TMPDIR"].flatMap((name) => {
    const value = Deno.env.get(name);
    return value === undefined ? [] : [[name, value]];
  });
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    clearEnv: true,
    env: { ...Object.fromEntries(keep), NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const DDP = ["train", "--strategy", "ddp", "--workload", "synthetic-mlp"];
const TWO_HOSTS = [...DDP, "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.213.0.1"];

const BAD_ENV: [string, string[], Record<string, string>, RegExp][] = [
  [
    "a job across hosts without a secret",
    TWO_HOSTS,
    {},
    /A job across 2 hosts needs a shared secret: export PARATRAIN_TOKEN=\$\(openssl rand -hex 32\)/,
  ],
  [
    "a secret too short",
    TWO_HOSTS,
    { PARATRAIN_TOKEN: "short" },
    /Invalid environment variable PARATRAIN_TOKEN: expected at least 16 characters/,
  ],
  [
    "mpirun's rank without a secret",
    DDP,
    { OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_SIZE: "2", OMPI_COMM_WORLD_LOCAL_SIZE: "2" },
    /Missing environment variable PARATRAIN_TOKEN: .*mpirun: add -x PARATRAIN_TOKEN/,
  ],
  [
    "mpirun across hosts without MASTER_ADDR",
    DDP,
    {
      OMPI_COMM_WORLD_RANK: "0",
      OMPI_COMM_WORLD_SIZE: "4",
      OMPI_COMM_WORLD_LOCAL_SIZE: "2",
      PARATRAIN_TOKEN: SECRET,
    },
    /Missing environment variable MASTER_ADDR: .*mpirun -x MASTER_ADDR=<host>/,
  ],
  [
    "torchrun's RANK without MASTER_ADDR",
    DDP,
    { RANK: "0", WORLD_SIZE: "2", PARATRAIN_TOKEN: SECRET },
    /Missing environment variable MASTER_ADDR/,
  ],
  [
    "a SLURM rank out of range",
    DDP,
    { SLURM_PROCID: "3", SLURM_NTASKS: "2", SLURM_JOB_NODELIST: "n1", PARATRAIN_TOKEN: SECRET },
    /Invalid environment variable SLURM_PROCID: 3 is not below SLURM_NTASKS=2/,
  ],
  [
    "a SLURM node list cut short",
    DDP,
    { SLURM_PROCID: "0", SLURM_NTASKS: "2", SLURM_JOB_NODELIST: "n[1-", PARATRAIN_TOKEN: SECRET },
    /Invalid environment variable SLURM_JOB_NODELIST: cannot read a host from "n\[1-"/,
  ],
  [
    "an unknown transport in the environment",
    DDP,
    {
      RANK: "0",
      WORLD_SIZE: "2",
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: "29500",
      PARATRAIN_TOKEN: SECRET,
      PARATRAIN_TRANSPORT: "ib",
    },
    /Invalid environment variable PARATRAIN_TRANSPORT: "ib"; choose from unix, tcp/,
  ],
  [
    "a bad MASTER_PORT",
    DDP,
    { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "h", MASTER_PORT: "0", PARATRAIN_TOKEN: SECRET },
    /Invalid environment variable MASTER_PORT: expected an integer from 1 to 65535, got "0"/,
  ],
  [
    "a scheduler's secret too short (before any backend or rank starts)",
    DDP,
    { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", PARATRAIN_TOKEN: "short" },
    /Invalid environment variable PARATRAIN_TOKEN: expected at least 16 characters .*got 5/,
  ],
  [
    "a rank in hexadecimal",
    DDP,
    { RANK: "0x1", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", PARATRAIN_TOKEN: SECRET },
    /Invalid environment variable RANK: expected an integer ≥ 0, got "0x1" \(decimal digits only/,
  ],
  [
    "a world size with an exponent",
    DDP,
    { RANK: "0", WORLD_SIZE: "1e1", MASTER_ADDR: "127.0.0.1", PARATRAIN_TOKEN: SECRET },
    /Invalid environment variable WORLD_SIZE: expected an integer ≥ 1, got "1e1" \(decimal digits only/,
  ],
  [
    "Open MPI's local size with a sign",
    DDP,
    {
      OMPI_COMM_WORLD_RANK: "0",
      OMPI_COMM_WORLD_SIZE: "2",
      OMPI_COMM_WORLD_LOCAL_SIZE: "+2",
      PARATRAIN_TOKEN: SECRET,
    },
    /Invalid environment variable OMPI_COMM_WORLD_LOCAL_SIZE: expected an integer ≥ 1, got "\+2"/,
  ],
  [
    "more ranks on this host than it can start",
    DDP,
    {
      RANK: "0",
      WORLD_SIZE: "4096",
      LOCAL_WORLD_SIZE: "4096",
      MASTER_ADDR: "127.0.0.1",
      PARATRAIN_TOKEN: SECRET,
    },
    /4096 ranks on this host|World size 4096 is more than this machine can start: at most/,
  ],
];

for (const [name, args, env, message] of BAD_ENV) {
  Deno.test(`bad DDP environment exits 2 with one line: ${name}`, async () => {
    const r = await cli(args, env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line expected, got: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  });
}

Deno.test("a --token-file others can read is refused; an owner-only one is taken", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "token");
    await Deno.writeTextFile(file, SECRET + "\n");
    await Deno.chmod(file, 0o644);
    const open = await cli([...TWO_HOSTS, "--token-file", file], {});
    assert.equal(open.code, 2, open.stderr);
    assert.match(
      open.stderr,
      /Refusing --token-file .*token: it is readable by group or others \(mode 644\); chmod 600/,
    );
    assert.ok(!open.stderr.includes(SECRET), "the secret was printed");
    await Deno.chmod(file, 0o600);
    // Taken: the run goes on to the next check (here, a world size this flag set cannot divide).
    const taken = await cli([...TWO_HOSTS, "--token-file", file, "--world-size", "3"], {});
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, /--world-size 3 does not divide across --nnodes 2/);
    await Deno.writeTextFile(file, "tiny");
    const short = await cli([...TWO_HOSTS, "--token-file", file], {});
    assert.match(
      short.stderr,
      /Invalid --token-file .*: expected a secret of at least 16 characters/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a scheduler's job bigger than this host is one rank of it: only the ranks here are counted", async () => {
  const env = {
    RANK: "0",
    WORLD_SIZE: "16",
    LOCAL_RANK: "0",
    LOCAL_WORLD_SIZE: "1",
    MASTER_ADDR: "127.0.0.1",
    MASTER_PORT: "29999",
    PARATRAIN_TOKEN: SECRET,
  };
  // Accepted as one rank of 16: the next check (the checkpoint to resume) is the one that fails,
  // before any rank joins the rendezvous.
  const r = await cli([...DDP, "--resume", "/nonexistent/ckpt.json"], env);
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /more than this machine can start/);
  assert.match(r.stderr, /Cannot read checkpoint \/nonexistent\/ckpt\.json/);
  // The same with Open MPI's variables: 2 ranks here of a job of 16.
  const ompi = await cli([...DDP, "--resume", "/nonexistent/ckpt.json"], {
    OMPI_COMM_WORLD_RANK: "0",
    OMPI_COMM_WORLD_SIZE: "16",
    OMPI_COMM_WORLD_LOCAL_RANK: "0",
    OMPI_COMM_WORLD_LOCAL_SIZE: "2",
    MASTER_ADDR: "127.0.0.1",
    PARATRAIN_TOKEN: SECRET,
  });
  assert.equal(ompi.code, 2, ompi.stderr);
  assert.match(ompi.stderr, /Cannot read checkpoint/);
});
