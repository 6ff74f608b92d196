// oauth4webapi's DPoP support, with a key pair from panva's dpop package, as a client of a
// running `jotkit serve`, driven line by line. First stdin line: {"issuer", "email",
// "password"}; the script discovers the server (RFC 8414) and answers {"event": "ready",
// metadata, jkt}. Then each stdin line is a command, answered by one stdout line:
//   {"cmd": "login"} -> POST {issuer}/login with fetch and a dpop.generateProof proof (the
//     login is not an OAuth grant); on use_dpop_nonce it retries with the DPoP-Nonce
//   {"cmd": "refresh"} -> refreshTokenGrantRequest at the advertised token endpoint with the
//     DPoP handle; on use_dpop_nonce (isDPoPNonceError) it retries once, as oauth4webapi's
//     documentation says (the handle has cached the server's nonce)
//   {"cmd": "call", "url"} -> protectedResourceRequest GET url with the DPoP handle, same retry
//   {"cmd": "quit"}
// Answers carry the access token, so the test can try it without the private key.
import { createInterface } from "node:readline";
import * as dpop from "dpop";
import * as oauth from "oauth4webapi";

const insecure = { [oauth.allowInsecureRequests]: true }; // http on loopback, for the tests
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const config = JSON.parse((await lines.next()).value);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const issuer = new URL(config.issuer);
const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
);
const client = { client_id: "node-dpop-interop" };
const keyPair = await dpop.generateKeyPair("ES256"); // the private key is not extractable
const handle = oauth.DPoP(client, keyPair);
let pair = null;

// One retry when the server asks for a nonce: the first answer carried it in DPoP-Nonce.
async function withNonceRetry(request) {
  try {
    return { ...(await request()), nonce_retries: 0 };
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    return { ...(await request()), nonce_retries: 1 };
  }
}

async function login() {
  const url = `${config.issuer}/login`;
  let nonce;
  for (let attempt = 0; attempt < 2; attempt++) {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        dpop: await dpop.generateProof(keyPair, url, "POST", nonce),
      },
      body: JSON.stringify({ email: config.email, password: config.password }),
    });
    const body = await response.json();
    if (response.status === 400 && body.error === "use_dpop_nonce" && nonce === undefined) {
      nonce = response.headers.get("dpop-nonce");
      continue;
    }
    if (response.status !== 200) return { ok: false, status: response.status, body };
    pair = body;
    return { ok: true, token_type: body.token_type, access_token: body.access_token, nonce_retries: attempt };
  }
  return { ok: false, status: 400, body: "use_dpop_nonce twice" };
}

async function refresh() {
  return withNonceRetry(async () => {
    const response = await oauth.refreshTokenGrantRequest(
      as, client, oauth.None(), pair.refresh_token, { DPoP: handle, ...insecure },
    );
    pair = await oauth.processRefreshTokenResponse(as, client, response);
    return { ok: true, token_type: pair.token_type, access_token: pair.access_token };
  });
}

async function call(url) {
  return withNonceRetry(async () => {
    const response = await oauth.protectedResourceRequest(
      pair.access_token, "GET", new URL(url), undefined, undefined, { DPoP: handle, ...insecure },
    );
    return { ok: response.status === 200, status: response.status, body: await response.json() };
  });
}

say({ event: "ready", metadata: as, jkt: await handle.calculateThumbprint() });
for (let line = await lines.next(); !line.done; line = await lines.next()) {
  const command = JSON.parse(line.value);
  if (command.cmd === "quit") break;
  try {
    if (command.cmd === "login") say(await login());
    else if (command.cmd === "refresh") say(await refresh());
    else if (command.cmd === "call") say(await call(command.url));
    else say({ ok: false, error: `unknown command ${command.cmd}` });
  } catch (error) {
    say({
      ok: false,
      name: error.name,
      code: error.code,
      error: error.error,
      status: error.status ?? error.response?.status,
      message: error.message,
    });
  }
}
process.exit(0);
