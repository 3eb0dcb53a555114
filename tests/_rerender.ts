import assert from "node:assert/strict";
import { join } from "node:path";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** The report files `report` re-renders from results.json. */
const REPORT_FILES = ["results.json", "report.md", "report.html"];

/**
 * Re-render `dir`'s reports with the CLI (`report --in dir/results.json`) into a fresh folder
 * and assert every file comes out byte for byte the same.
 *
 * @param dir a folder `writeReports` wrote
 */
export async function assertRerendersIdentically(dir: string): Promise<void> {
  const again = join(dir, "again");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "report", "--in", join(dir, "results.json"), "--out", again],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  for (const name of REPORT_FILES) {
    assert.equal(
      await Deno.readTextFile(join(again, name)),
      await Deno.readTextFile(join(dir, name)),
      `${name} differs after re-rendering`,
    );
  }
}
