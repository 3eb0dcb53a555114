/**
 * A program that joins two threaded process groups of its own (ranks 0 and 1 of a world of
 * two), all-reduces once, closes them unless told `leave-open`, and ends its main module
 * without calling `Deno.exit`: it exits only when nothing is left running.
 *
 * @module
 */
import { createRendezvous } from "../comm/rendezvous.ts";
import { startThreadedProcessGroup } from "../comm/threaded_process_group.ts";

const { dir, token } = await createRendezvous();
const groups = await Promise.all(
  [0, 1].map((rank) =>
    startThreadedProcessGroup({ init: { rank, worldSize: 2, rendezvousDir: dir, token } })
  ),
);
await Promise.all(groups.map((group) => group.allReduce(group.sharedFloats(1000))));
if (Deno.args[0] !== "leave-open") { for (const group of groups) group.close(); }
await Deno.remove(dir, { recursive: true });
console.log("main module done");
