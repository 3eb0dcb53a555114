/**
 * Looking at the processes a test started: their children, and what their environment says
 * (from /proc, readable by the same user).
 *
 * @module
 */

/** A `train` that would run for hours: a DDP job to signal, kill and watch. */
export const DDP_FOREVER = [
  "train",
  "--workload",
  "iris-logreg",
  "--strategy",
  "ddp",
  "--world-size",
  "2",
  "--steps",
  "10000000",
];

/** Direct children of `pid`. */
export async function childrenOf(pid: number): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-P", String(pid)], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** The value of `name` in a process's environment, or null. */
export async function envOf(pid: number, name: string): Promise<string | null> {
  const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
  const entry = env.split("\0").find((e) => e.startsWith(`${name}=`));
  return entry ? entry.slice(name.length + 1) : null;
}
