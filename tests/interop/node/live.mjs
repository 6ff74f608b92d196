// node jose + oauth4webapi as a client of a running `jotkit serve`, driven line by line.
// First stdin line: {"issuer", "audience", "email", "password"}. The script discovers the
// server (RFC 8414, oauth4webapi), logs in, verifies the access token with createRemoteJWKSet
// over the advertised jwks_uri, and prints {"event": "ready", ...}. Then each stdin line is a
// command, answered by one stdout line:
//   {"cmd": "refresh"} -> refresh grant at the token endpoint, verify the new access token
//   {"cmd": "verify", "token": ...} -> verify a token from elsewhere
//   {"cmd": "quit"}
import { createInterface } from "node:readline";
import * as jose from "jose";
import * as oauth from "oauth4webapi";

const insecure = { [oauth.allowInsecureRequests]: true }; // http on loopback, for the tests
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const config = JSON.parse((await lines.next()).value);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const issuer = new URL(config.issuer);
const discovered = await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure });
const as = await oauth.processDiscoveryResponse(issuer, discovered);
const client = { client_id: "node-interop" };
const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));

async function verify(token) {
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer: as.issuer, audience: config.audience, typ: "at+jwt",
    });
    return { ok: true, kid: protectedHeader.kid, sub: payload.sub };
  } catch (error) {
    return { ok: false, kid: jose.decodeProtectedHeader(token).kid, code: error.code ?? error.name, message: error.message };
  }
}

const login = await fetch(`${config.issuer}/login`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ email: config.email, password: config.password }),
});
let pair = await login.json();
say({ event: "ready", metadata: as, ...(await verify(pair.access_token)) });

for (let line = await lines.next(); !line.done; line = await lines.next()) {
  const command = JSON.parse(line.value);
  if (command.cmd === "quit") break;
  if (command.cmd === "verify") {
    say(await verify(command.token));
    continue;
  }
  try {
    const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), pair.refresh_token, insecure);
    pair = await oauth.processRefreshTokenResponse(as, client, response);
    say({ refreshed: true, token_type: pair.token_type, ...(await verify(pair.access_token)) });
  } catch (error) {
    say({ ok: false, refreshed: false, code: error.code ?? error.name, message: error.message });
  }
}
process.exit(0);
