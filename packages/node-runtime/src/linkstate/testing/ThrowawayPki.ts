/**
 * A throwaway PKI for tests of mutual TLS: a CA and leaf certificates made with the `openssl`
 * command in a directory the caller owns (and removes). Keys are EC P-256, valid one day; every
 * leaf is usable as server and client and names its addresses as IP subjectAltNames.
 */
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Data, Effect } from "effect"
import { execa } from "execa"

export class PkiFailed extends Data.TaggedError("PkiFailed")<{ readonly step: string; readonly cause: unknown }> {
  override get message(): string {
    return `throwaway PKI: ${this.step}: ${String(this.cause)}`
  }
}

export interface PkiCa {
  readonly name: string
  readonly certFile: string
  readonly keyFile: string
}

export interface PkiLeaf {
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
}

const openssl = (step: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.tryPromise({
    try: () => execa("openssl", args, { cwd }),
    catch: (cause) => new PkiFailed({ step, cause }),
  }).pipe(Effect.asVoid)

/** `openssl req` arguments for a fresh unencrypted P-256 key written to `keyFile`. */
const newP256Key = (keyFile: string) =>
  ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile] as const

/** A self-signed CA `name` (files `<name>.crt`, `<name>.key` in `dir`). */
export const makeCa = (dir: string, name: string): Effect.Effect<PkiCa, PkiFailed> =>
  Effect.gen(function* () {
    const keyFile = join(dir, `${name}.key`)
    const certFile = join(dir, `${name}.crt`)
    yield* openssl(
      `CA ${name}`,
      [
        "req",
        "-x509",
        ...newP256Key(keyFile),
        "-out",
        certFile,
        "-days",
        "1",
        "-subj",
        `/CN=${name}`,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ],
      dir,
    )
    return { name, certFile, keyFile }
  })

/** A leaf `name` signed by `ca`, for the given IP addresses (server and client auth). */
export const makeLeaf = (
  dir: string,
  ca: PkiCa,
  name: string,
  ipAddresses: ReadonlyArray<string>,
): Effect.Effect<PkiLeaf, PkiFailed> =>
  Effect.gen(function* () {
    const keyFile = join(dir, `${name}.key`)
    const csrFile = join(dir, `${name}.csr`)
    const certFile = join(dir, `${name}.crt`)
    const extFile = join(dir, `${name}.ext`)
    yield* Effect.tryPromise({
      try: () =>
        writeFile(
          extFile,
          [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth,clientAuth",
            `subjectAltName=${ipAddresses.map((a) => `IP:${a}`).join(",")}`,
            "",
          ].join("\n"),
        ),
      catch: (cause) => new PkiFailed({ step: `extensions of ${name}`, cause }),
    })
    yield* openssl(
      `key and request of ${name}`,
      ["req", ...newP256Key(keyFile), "-out", csrFile, "-subj", `/CN=${name}`],
      dir,
    )
    yield* openssl(
      `certificate of ${name}`,
      [
        "x509",
        "-req",
        "-in",
        csrFile,
        "-CA",
        ca.certFile,
        "-CAkey",
        ca.keyFile,
        "-CAcreateserial",
        "-out",
        certFile,
        "-days",
        "1",
        "-extfile",
        extFile,
      ],
      dir,
    )
    return { caFile: ca.certFile, certFile, keyFile }
  })
