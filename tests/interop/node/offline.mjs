// node jose and jotkit, without a server: one JSON request on stdin, one JSON answer on stdout.
//   {"mode": "sign", "algs": [...], "claims": {...}}
//     -> {"signed": {alg: {token, public_jwk, private_jwk}}}: a fresh key per alg, exported
//   {"mode": "verify", "cases": {name: {alg, token, jwk}}}
//     -> {"verified": {name: {ok: true, payload, header} | {ok: false, code, message}}}
import * as jose from "jose";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text));
}));

async function sign(alg, claims) {
  const options = { extractable: true };
  const secret = alg.startsWith("HS");
  const made = secret ? await jose.generateSecret(alg, options) : await jose.generateKeyPair(alg, options);
  const privateKey = secret ? made : made.privateKey;
  const publicJwk = await jose.exportJWK(secret ? made : made.publicKey);
  const kid = secret ? "node-secret" : await jose.calculateJwkThumbprint(publicJwk);
  const token = await new jose.SignJWT(claims).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(privateKey);
  return { token, public_jwk: { ...publicJwk, alg, kid }, private_jwk: { ...(await jose.exportJWK(privateKey)), alg, kid } };
}

async function verify({ alg, token, jwk }) {
  try {
    const key = await jose.importJWK(jwk, alg);
    const { payload, protectedHeader } = await jose.jwtVerify(token, key, { algorithms: [alg] });
    return { ok: true, payload, header: protectedHeader };
  } catch (error) {
    return { ok: false, code: error.code ?? error.name, message: error.message };
  }
}

const answer = {};
if (input.mode === "sign") {
  answer.signed = {};
  for (const alg of input.algs) answer.signed[alg] = await sign(alg, input.claims);
} else {
  answer.verified = {};
  for (const [name, item] of Object.entries(input.cases)) answer.verified[name] = await verify(item);
}
process.stdout.write(JSON.stringify(answer));
