/**
 * The program's version line, shared by `--version` and the start-up summary.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The protocol this build speaks (docs/protocol.md). */
export const PROTOCOL = 'protocol 2.1 "rainbow"';

/** The version line of `--version`. */
export const VERSION: string =
  `udpjwt ${denoJson.version} (${PROTOCOL}, deno ${Deno.version.deno}, ${Deno.build.target})`;
