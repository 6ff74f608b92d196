// node jose checks DPoP proofs jotkit made: one JSON request on stdin, one answer on stdout.
//   {"proofs": {name: proof}}
//     -> {"verified": {name: {ok: true, header, payload, jkt} | {ok: false, code, message}}}
// The key is the proof's own jwk header (jose.EmbeddedJWK), as RFC 9449 §4.3 says; typ and
// the asymmetric algorithms are required the way a DPoP server built on jose requires them.
import * as jose from "jose";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text));
}));

const algorithms = ["ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "RS256"];
const verified = {};
for (const [name, proof] of Object.entries(input.proofs)) {
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
      typ: "dpop+jwt",
      algorithms,
      maxTokenAge: "60s",
      requiredClaims: ["jti", "htm", "htu", "iat"],
    });
    const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk, "sha256");
    verified[name] = { ok: true, header: protectedHeader, payload, jkt };
  } catch (error) {
    verified[name] = { ok: false, code: error.code ?? "ERR_UNKNOWN", message: String(error.message) };
  }
}
process.stdout.write(JSON.stringify({ verified }));
