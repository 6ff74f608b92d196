// DPoP (RFC 9449) in the page: the tour's key pair, the proofs it signs, and what the decoder
// says about a proof or a bound token. No DOM here: app.js renders.
//
// The tour's key is an ECDSA P-256 pair made by WebCrypto with extractable: false, kept in
// IndexedDB (a CryptoKey survives there as the object itself, never as bytes). Scripts on
// this page can sign with it but nobody, this page included, can read the private key out:
// a token lifted from the page is useless without a proof that only this browser can make.
import { b64urlEncode } from "./jose.js";

export const DPOP_TYP = "dpop+jwt";
export const DPOP_ALG = "ES256";
export const KEY_DATABASE = "jotkit";
export const KEY_STORE = "dpop-keys";
export const KEY_NAME = "tour";

const EC_P256 = { name: "ECDSA", namedCurve: "P-256" };
const ES256_SIGN = { name: "ECDSA", hash: "SHA-256" };

export function dpopAvailable() {
  return Boolean(globalThis.crypto?.subtle && globalThis.indexedDB);
}

function openKeyDatabase() {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(KEY_DATABASE, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(KEY_STORE);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

function inStore(database, mode, action) {
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(KEY_STORE, mode);
    const request = action(transaction.objectStore(KEY_STORE));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = () => reject(transaction.error);
  });
}

// The tour's key pair: the one in IndexedDB, else a new non-extractable one stored there.
// { keyPair, jwk (public, the proof's header), thumbprint (RFC 7638), created }
export async function tourKey() {
  const database = await openKeyDatabase();
  try {
    let keyPair = await inStore(database, "readonly", (store) => store.get(KEY_NAME));
    let created = false;
    if (!keyPair) {
      // extractable: false binds the private key; WebCrypto keeps the public key of a pair
      // extractable always (it is public), which is how the proof's jwk header is written.
      keyPair = await crypto.subtle.generateKey(EC_P256, false, ["sign", "verify"]);
      await inStore(database, "readwrite", (store) => store.put(keyPair, KEY_NAME));
      created = true;
    }
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
    const jwk = { kty, crv, x, y };
    return { keyPair, jwk, thumbprint: await thumbprint(jwk), created };
  } finally {
    database.close();
  }
}

// RFC 7638: SHA-256 over the required members, in lexicographic order, no whitespace.
const THUMBPRINT_MEMBERS = { EC: ["crv", "kty", "x", "y"], OKP: ["crv", "kty", "x"], RSA: ["e", "kty", "n"] };

export async function thumbprint(jwk) {
  const members = THUMBPRINT_MEMBERS[jwk?.kty];
  if (!members || members.some((name) => typeof jwk[name] !== "string")) {
    throw new Error("not an EC, OKP or RSA public JWK");
  }
  const canonical = JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]])));
  return b64urlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical))));
}

// ath: base64url(SHA-256(ASCII(access token))), RFC 9449 §4.2.
export async function accessTokenHash(accessToken) {
  return b64urlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken))));
}

function b64urlJson(value) {
  return b64urlEncode(new TextEncoder().encode(JSON.stringify(value)));
}

// htu: the request's URL without query and fragment (RFC 9449 §4.2).
export function htuOf(url) {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

// A proof for one request, signed by the key in IndexedDB. WebCrypto's ECDSA signature is
// already JWS's form for ES256: raw r || s, 32 bytes each (RFC 7518 §3.4), no DER.
export async function makeProof(key, method, url, { accessToken, nonce } = {}) {
  const header = { typ: DPOP_TYP, alg: DPOP_ALG, jwk: key.jwk };
  const claims = { jti: crypto.randomUUID(), htm: method, htu: htuOf(url), iat: Math.floor(Date.now() / 1000) };
  if (accessToken) claims.ath = await accessTokenHash(accessToken);
  if (nonce) claims.nonce = nonce;
  const signingInput = `${b64urlJson(header)}.${b64urlJson(claims)}`;
  const signature = await crypto.subtle.sign(ES256_SIGN, key.keyPair.privateKey, new TextEncoder().encode(signingInput));
  return `${signingInput}.${b64urlEncode(new Uint8Array(signature))}`;
}

// -- the decoder's explanations ---------------------------------------------------------------

export function isProof(header) {
  return typeof header.typ === "string" && header.typ.toLowerCase() === DPOP_TYP;
}

export function boundThumbprint(claims) {
  const jkt = claims.cnf?.jkt;
  return typeof jkt === "string" ? jkt : null;
}

function describeJwk(jwk) {
  if (jwk === null || typeof jwk !== "object") return "missing: a proof must carry its public key";
  const curve = typeof jwk.crv === "string" ? ` on ${jwk.crv}` : "";
  return `${String(jwk.kty)} public key${curve}`;
}

// A DPoP proof, item by item: [{ term, name, text }] (name: the claim or header, for tests).
export async function describeProof(header, claims, now) {
  const items = [
    { term: "request method", name: "htm", text: typeof claims.htm === "string" ? claims.htm : "missing: the proof names no method" },
    { term: "request URL", name: "htu", text: typeof claims.htu === "string" ? `${claims.htu} (query and fragment are not part of it)` : "missing: the proof names no URL" },
  ];
  if (typeof claims.iat === "number") {
    const age = Math.round(now - claims.iat);
    const when = age >= 0 ? `${age} s ago` : `${-age} s in the future`;
    items.push({ term: "made at", name: "iat", text: `${new Date(claims.iat * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC")} (${when}); a verifier accepts it for about a minute after that` });
  } else {
    items.push({ term: "made at", name: "iat", text: "missing: a verifier refuses a proof without iat" });
  }
  items.push({
    term: "unique id",
    name: "jti",
    text: typeof claims.jti === "string" ? `${claims.jti}: a verifier remembers it and refuses the same proof twice` : "missing: a verifier refuses a proof without jti",
  });
  items.push(typeof claims.ath === "string"
    ? { term: "access token hash", name: "ath", text: `${claims.ath}: SHA-256 of the one access token this proof goes with (a call to an API)` }
    : { term: "access token hash", name: "ath", text: "none: a proof for the token endpoint (login or refresh), not for an API call" });
  if (typeof claims.nonce === "string") {
    items.push({ term: "server nonce", name: "nonce", text: `${claims.nonce}: given by the server in DPoP-Nonce, so the proof cannot have been made in advance` });
  }
  items.push({ term: "signing key", name: "jwk", text: `${describeJwk(header.jwk)}, embedded in the header: the proof is signed by its private half, which never leaves the client` });
  let jkt = "cannot be computed without WebCrypto";
  try {
    if (globalThis.crypto?.subtle) jkt = await thumbprint(header.jwk);
  } catch (error) {
    jkt = `cannot be computed: ${error.message}`;
  }
  items.push({ term: "key thumbprint", name: "jkt", text: `${jkt} (RFC 7638): an access token bound to this key carries it as cnf.jkt` });
  return items;
}
