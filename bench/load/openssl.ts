/**
 * The reference figures of `--openssl`: one-core sign and verify rates from
 * `openssl speed`, to compare the server's responses/s with.
 *
 * @module
 */

/** One-core sign and verify rates from `openssl speed`. */
export interface SpeedFigures {
  /** Signatures per second. */
  signPerSec: number;
  /** Verifications per second. */
  verifyPerSec: number;
}

/**
 * Reads `openssl speed`'s table: the header holding `sign/s verify/s` and
 * the line after it (OpenSSL 3.0 and 3.2+ layouts).
 *
 * @param text The output of `openssl speed`.
 * @returns The rates, or undefined when there is no such table.
 */
export function parseOpensslSpeed(text: string): SpeedFigures | undefined {
  const lines = text.split("\n");
  const h = lines.findIndex((l) => /\bsign\/s\s+verify\/s\b/.test(l));
  const data = lines[h + 1];
  if (h < 0 || data === undefined) return undefined;
  const columns = lines[h]!.trim().split(/\s+/);
  const values = data.trim().split(/\s+/).slice(-columns.length);
  const sign = Number(values[columns.indexOf("sign/s")]);
  const verify = Number(values[columns.indexOf("verify/s")]);
  if (!Number.isFinite(sign) || !Number.isFinite(verify)) return undefined;
  return { signPerSec: sign, verifyPerSec: verify };
}

/**
 * Runs `openssl speed -seconds 3 ALGORITHM` on one core.
 *
 * @param algorithm e.g. `rsa2048` or `ecdsap256`.
 * @returns The rates, or undefined when openssl is missing or says nothing.
 */
export async function opensslSpeed(
  algorithm: string,
): Promise<SpeedFigures | undefined> {
  try {
    const out = await new Deno.Command("openssl", {
      args: ["speed", "-seconds", "3", algorithm],
      stdout: "piped",
      stderr: "null",
    }).output();
    return parseOpensslSpeed(new TextDecoder().decode(out.stdout));
  } catch {
    return undefined;
  }
}
