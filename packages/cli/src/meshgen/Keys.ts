/**
 * WireGuard keys from node:crypto: X25519 pairs and pre-shared keys in WireGuard's base64 form
 * (standard alphabet, padded). Private keys are clamped as `wg genkey` does; `wg pubkey` gives
 * the same public key either way (X25519 clamps on use), which the CLI tests check.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto"
import type { MeshGen } from "@net-perf/engine"

const fromJwk = (base64url: string | undefined): Buffer => {
  const bytes = Buffer.from(base64url ?? "", "base64url")
  if (bytes.length !== 32) throw new Error(`X25519 JWK member has ${bytes.length} bytes, expected 32`)
  return bytes
}

export const x25519KeyPair = (): MeshGen.KeyPair => {
  const { privateKey, publicKey } = generateKeyPairSync("x25519")
  const secret = fromJwk(privateKey.export({ format: "jwk" }).d)
  secret[0] = (secret[0] ?? 0) & 248
  secret[31] = ((secret[31] ?? 0) & 127) | 64
  return {
    privateKey: secret.toString("base64"),
    publicKey: fromJwk(publicKey.export({ format: "jwk" }).x).toString("base64"),
  }
}

export const nodeKeyGenerator: MeshGen.KeyGenerator = {
  keyPair: x25519KeyPair,
  presharedKey: () => randomBytes(32).toString("base64"),
}
