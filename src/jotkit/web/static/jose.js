// The token logic of the page: decode a JWS compact JWT, list what deserves a warning, and
// verify it with WebCrypto under the same rules as jotkit's Python core (src/jotkit/jose).
// No DOM here: app.js renders. Errors carry the core's stable codes (jotkit/jose/errors.py).

// Kept equal to jotkit/jose/claims.py by tests/web/test_decoder.py.
export const SECRET_CLAIM_NAMES = [
  "password", "passwd", "pwd", "pass", "secret", "client_secret", "api_key", "apikey",
  "private_key", "privatekey", "credit_card", "card_number", "cvv", "ssn", "pin", "otp",
  "totp_secret", "refresh_token", "session_secret",
];
export const PERSONAL_CLAIM_NAMES = ["email", "phone", "phone_number", "address", "birthdate", "dob"];
const REGISTERED_CLAIM_NAMES = new Set([
  "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "sid", "client_id", "auth_time",
  "acr", "amr", "azp", "roles", "groups", "entitlements", "act", "may_act", "cnf",
]);
// Headers that name or carry a key: a verifier that follows them lets the token choose its
// own key (RFC 8725 §3.10, CVE-2018-0114). jotkit never reads them.
export const KEY_HEADERS = {
  jku: "points at a URL of keys: a verifier that fetches it can be steered to an attacker's keys (and is an SSRF vector)",
  x5u: "points at a URL of certificates: a verifier that fetches it can be steered to an attacker's key (and is an SSRF vector)",
  jwk: "embeds a public key: a verifier that uses it accepts any token its bearer signed (CVE-2018-0114)",
  x5c: "embeds a certificate chain: trusting it without a pinned root lets the token bring its own key",
};
export const MAX_LIFETIME_SECONDS = 3600;
const TIME_CLAIMS = ["exp", "nbf", "iat", "auth_time"]; // cli/display.py TIME_CLAIMS
export const MAX_TOKEN_BYTES = 8192; // jws.DEFAULT_MAX_TOKEN_BYTES

export class JoseError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// -- base64url and JSON -----------------------------------------------------------------

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function b64urlDecode(segment, what = "segment", nonCanonicalCode = "ERR_JWS_MALFORMED") {
  // Strict (RFC 7515 §2): no padding, no "+" or "/", no whitespace, as jose/b64.py.
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) {
    throw new JoseError("ERR_JWS_MALFORMED", `the ${what} is not strict unpadded base64url`);
  }
  const standard = segment.replaceAll("-", "+").replaceAll("_", "/");
  const binary = atob(standard + "===".slice((segment.length + 3) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  // Canonical (RFC 4648 §3.5): one spelling per value, no stray bits in the last character.
  if (b64urlEncode(bytes) !== segment) {
    throw new JoseError(nonCanonicalCode, `the ${what} is not canonical base64url (its last character has non-zero unused bits)`);
  }
  return bytes;
}

export function b64urlEncode(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function parseObject(segment, what, code) {
  let value;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(b64urlDecode(segment, what));
    value = JSON.parse(text);
    refuseUnrepresentable(value, what, code);
    if (what === "header") {
      const repeated = repeatedName(text);
      if (repeated !== null) {
        throw new JoseError(code, `the header repeats the member name ${JSON.stringify(repeated)}`);
      }
    }
  } catch (error) {
    if (error instanceof JoseError) throw error;
    throw new JoseError(code, `the ${what} is not valid JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new JoseError(code, `the ${what} must be a JSON object`);
  }
  return value;
}

// What JSON.parse takes but the core's parsers refuse (orjson, and json for headers): nesting
// past 1024 levels, numbers out of range (1e400 parses as Infinity, shown as null) and lone
// UTF-16 surrogates ("\ud800"). Refused here too, so the page never shows what no verifier reads.
const MAX_DEPTH = 1024;
const LONE_SURROGATE = /\p{Cs}/u;

function refuseUnrepresentable(root, what, code) {
  const pending = [[root, 1]];
  while (pending.length) {
    const [value, depth] = pending.pop();
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new JoseError(code, `the ${what} holds a number out of range`);
    }
    if (typeof value === "string" && LONE_SURROGATE.test(value)) {
      throw new JoseError(code, `the ${what} holds a lone UTF-16 surrogate, which is not text`);
    }
    if (value === null || typeof value !== "object") continue;
    if (depth > MAX_DEPTH) throw new JoseError(code, `the ${what} nests deeper than ${MAX_DEPTH} levels`);
    for (const [name, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(name)) {
        throw new JoseError(code, `the ${what} holds a lone UTF-16 surrogate, which is not text`);
      }
      pending.push([item, depth + 1]);
    }
  }
}

// JSON.parse keeps the last of two equal names; the core refuses a header that repeats one,
// because two parsers may pick different ones (RFC 7515 §4). `text` is already valid JSON.
function repeatedName(text) {
  const objects = []; // one Set of names per open object, null per open array
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (expectName) {
        const name = JSON.parse(text.slice(i, end + 1));
        const names = objects.at(-1);
        if (names.has(name)) return name;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === "{") {
      objects.push(new Set());
      expectName = true;
    } else if (c === "[") {
      objects.push(null);
    } else if (c === "}" || c === "]") {
      objects.pop();
    } else if (c === ",") {
      expectName = objects.at(-1) instanceof Set;
    }
  }
  return null;
}

// -- decoding (UNVERIFIED: for display only) --------------------------------------------

export function splitToken(token) {
  return token.trim().split(".");
}

export function decode(token) {
  const parts = splitToken(token);
  if (token.trim().startsWith("{")) {
    throw new JoseError("ERR_JWS_JSON_SERIALIZATION", "this is a JWS in the JSON serialization (RFC 7515 §7.2); only the compact serialization is read here");
  }
  if (parts.length === 5) {
    throw new JoseError("ERR_JWE_NOT_SUPPORTED", "5 segments: this is an encrypted JWE, not a JWS; it cannot be read without the decryption key");
  }
  if (parts.length !== 3) {
    throw new JoseError("ERR_JWS_MALFORMED", `a compact JWS has 3 segments, this has ${parts.length}`);
  }
  const header = parseObject(parts[0], "header", "ERR_JWS_MALFORMED");
  const claims = parseObject(parts[1], "payload", "ERR_JWT_CLAIMS_INVALID");
  return { parts, header, claims };
}

function isNumericDate(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// Same wording as claims._span: "45 s", "14 min", "3 h", "12 days".
export function span(seconds) {
  const s = Math.abs(seconds);
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(0)} h`;
  return `${(s / 86400).toFixed(0)} days`;
}

export function describeTimes(claims, now) {
  const names = { iat: "issued", nbf: "valid from", exp: "expires" };
  const times = [];
  for (const [claim, label] of Object.entries(names)) {
    if (!(claim in claims)) continue;
    const value = claims[claim];
    if (!isNumericDate(value)) {
      times.push({ claim, label, text: `not a NumericDate (${JSON.stringify(value)})` });
      continue;
    }
    const date = new Date(value * 1000);
    const when = Number.isNaN(date.getTime()) ? "out of range" : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    const delta = value - now;
    const relative = delta >= 0 ? `in ${span(delta)}` : `${span(delta)} ago`;
    times.push({ claim, label, text: `${when} (${relative})` });
  }
  if (isNumericDate(claims.exp)) {
    const status = claims.exp <= now ? "expired" : isNumericDate(claims.nbf) && claims.nbf > now ? "not yet valid" : "within its time window";
    times.push({ claim: "status", label: "status now", text: status });
    if (isNumericDate(claims.iat)) {
      times.push({ claim: "lifetime", label: "lifetime", text: span(claims.exp - claims.iat) });
    }
  }
  return times;
}

function normalised(name) {
  return name.toLowerCase().replaceAll("-", "_");
}

// What jotkit token decode warns about. `id` is stable (tests and styling), `text` is for people.
export function warnings(header, claims, now, size = 0) {
  const found = [];
  const alg = header.alg;
  if (typeof alg === "string" && alg.toLowerCase() === "none") {
    found.push({ id: "alg-none", text: 'alg is "none": this token is unsigned, anyone can write one. jotkit never accepts it.' });
  }
  if (!("exp" in claims)) {
    found.push({ id: "no-exp", text: 'no "exp" claim: this token never expires. jotkit refuses it unless the verifier drops the requirement.' });
  } else if (isNumericDate(claims.exp)) {
    const start = isNumericDate(claims.iat) ? claims.iat : isNumericDate(claims.nbf) ? claims.nbf : now;
    const lifetime = claims.exp - start;
    if (lifetime > MAX_LIFETIME_SECONDS) {
      found.push({ id: "long-lifetime", text: `lifetime is ${span(lifetime)}, over 1 hour: a stolen token works that long. Keep access tokens short (minutes) and refresh them.` });
    }
  }
  for (const name of TIME_CLAIMS) {
    if (name in claims && !isNumericDate(claims[name])) {
      found.push({ id: "bad-date", claim: name, text: `"${name}" is not a NumericDate (seconds, a number): jotkit refuses the token.` });
    }
  }
  const secret = new Set(SECRET_CLAIM_NAMES);
  const personal = new Set(PERSONAL_CLAIM_NAMES);
  for (const name of Object.keys(claims)) {
    if (REGISTERED_CLAIM_NAMES.has(name)) continue;
    if (secret.has(normalised(name))) {
      found.push({ id: "secret-claim", claim: name, text: `claim "${name}" looks like a secret: anyone holding the token can read it. jotkit refuses to sign it.` });
    } else if (personal.has(normalised(name))) {
      found.push({ id: "personal-claim", claim: name, text: `claim "${name}" is personal data: anyone holding the token can read it.` });
    }
  }
  for (const [name, why] of Object.entries(KEY_HEADERS)) {
    if (name in header) {
      found.push({ id: `header-${name}`, text: `header "${name}" ${why}. jotkit ignores it: keys come only from the verifier.` });
    }
  }
  if ("crit" in header) {
    found.push({ id: "header-crit", text: 'header "crit" asks for extensions jotkit does not implement: jotkit refuses the token.' });
  }
  if (size > MAX_TOKEN_BYTES) {
    found.push({ id: "token-too-large", text: `token is ${size} bytes: jotkit verifiers refuse tokens over ${MAX_TOKEN_BYTES} bytes.` });
  }
  return found;
}

// -- keys -------------------------------------------------------------------------------

const HASH_BYTES = { "SHA-256": 32, "SHA-384": 48, "SHA-512": 64 };
// alg -> what key it needs and how WebCrypto names it (RFC 7518 §3, RFC 8037, RFC 9864).
export const ALGORITHMS = {
  HS256: { kty: "oct", hash: "SHA-256" },
  HS384: { kty: "oct", hash: "SHA-384" },
  HS512: { kty: "oct", hash: "SHA-512" },
  RS256: { kty: "RSA", name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  RS384: { kty: "RSA", name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" },
  RS512: { kty: "RSA", name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" },
  PS256: { kty: "RSA", name: "RSA-PSS", hash: "SHA-256" },
  PS384: { kty: "RSA", name: "RSA-PSS", hash: "SHA-384" },
  PS512: { kty: "RSA", name: "RSA-PSS", hash: "SHA-512" },
  ES256: { kty: "EC", crv: ["P-256"], hash: "SHA-256", size: 32 },
  ES384: { kty: "EC", crv: ["P-384"], hash: "SHA-384", size: 48 },
  ES512: { kty: "EC", crv: ["P-521"], hash: "SHA-512", size: 66 },
  EdDSA: { kty: "OKP", crv: ["Ed25519", "Ed448"] },
  Ed25519: { kty: "OKP", crv: ["Ed25519"] },
  Ed448: { kty: "OKP", crv: ["Ed448"] },
};
const MIN_RSA_BITS = 2048;
const ED448_MISSING = "Ed448 is not available in WebCrypto (browsers implement Ed25519 only): verify this token with `jotkit token verify` instead";

// The algorithms a key may verify with: from its own kty/crv (or its bound alg), never from the
// token's header, so an RSA or EC public key can never become an HMAC secret (RFC 8725 §3.1).
export function algorithmsFor(key) {
  if (key.use === "enc" || (Array.isArray(key.key_ops) && !key.key_ops.includes("verify"))) return [];
  let names = Object.keys(ALGORITHMS).filter((name) => {
    const spec = ALGORITHMS[name];
    return spec.kty === key.kty && (!spec.crv || spec.crv.includes(key.crv));
  });
  if (key.kty === "oct") names = names.filter((name) => key.secret.length >= HASH_BYTES[ALGORITHMS[name].hash]);
  return key.alg === undefined ? names : names.filter((name) => name === key.alg);
}

function describeKey(key) {
  const what = key.kty === "oct" ? "HMAC secret" : `${key.kty} key${key.crv ? ` on ${key.crv}` : ""}`;
  return key.kid === undefined ? what : `${what} (kid ${JSON.stringify(key.kid)})`;
}

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth"];
const JWK_MEMBERS = { oct: ["k"], RSA: ["n", "e"], EC: ["crv", "x", "y"], OKP: ["crv", "x"] };

function keyFromJwk(jwk) {
  if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk) || typeof jwk.kty !== "string") {
    throw new JoseError("ERR_JWK_INVALID", 'a JWK is a JSON object with a "kty"');
  }
  const key = { kty: jwk.kty, source: "jwk" };
  for (const name of ["kid", "alg", "use", "crv"]) {
    if (name in jwk) {
      if (typeof jwk[name] !== "string") throw new JoseError("ERR_JWK_INVALID", `JWK "${name}" must be a string`);
      key[name] = jwk[name];
    }
  }
  if ("key_ops" in jwk) {
    if (!Array.isArray(jwk.key_ops) || !jwk.key_ops.every((op) => typeof op === "string")) {
      throw new JoseError("ERR_JWK_INVALID", 'JWK "key_ops" must be a list of strings');
    }
    key.key_ops = jwk.key_ops;
  }
  const members = Object.hasOwn(JWK_MEMBERS, jwk.kty) ? JWK_MEMBERS[jwk.kty] : undefined;
  if (!members) throw new JoseError("ERR_JWK_INVALID", `unsupported key type ${JSON.stringify(jwk.kty)}`);
  for (const name of members) {
    if (typeof jwk[name] !== "string") throw new JoseError("ERR_JWK_INVALID", `${jwk.kty} JWK needs a string "${name}"`);
  }
  if (key.alg !== undefined && !Object.hasOwn(ALGORITHMS, key.alg)) {
    throw new JoseError("ERR_JWK_INVALID", `unsupported algorithm ${JSON.stringify(key.alg)} for a key`);
  }
  if (jwk.kty === "oct") {
    key.secret = b64urlDecode(jwk.k, 'JWK "k"');
    refuseAsymmetricSecret(key.secret);
  } else {
    // Only the public members reach importKey: the page verifies, it never needs to sign.
    key.jwk = Object.fromEntries(members.map((name) => [name, jwk[name]]));
    key.jwk.kty = jwk.kty;
    key.hadPrivate = PRIVATE_MEMBERS.some((name) => name in jwk);
  }
  return key;
}

// The AlgorithmIdentifier of a SubjectPublicKeyInfo (RFC 5280 §4.1), read just far enough to
// know the key type and curve before importing it.
const SPKI_TYPES = {
  "2a864886f70d010101": { kty: "RSA" },
  "2b6570": { kty: "OKP", crv: "Ed25519" },
  "2b6571": { kty: "OKP", crv: "Ed448" },
};
const EC_CURVES = { "2a8648ce3d030107": "P-256", "2b81040022": "P-384", "2b81040023": "P-521" };

// Reads one DER element of `tag` at `offset`: its content's { start, end }; throws if absent.
function derReader(der) {
  return (offset, tag) => {
    if (der[offset] !== tag) throw new Error("unexpected tag");
    let length = der[offset + 1];
    let start = offset + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + der[start++];
    }
    if (start + length > der.length) throw new Error("truncated");
    return { start, end: start + length };
  };
}

// Is `der` exactly one DER SEQUENCE opening with a SEQUENCE or an INTEGER? That is the shape of
// every key encoding (SPKI, PKCS#8, PKCS#1, SEC1); random secret bytes have it about once in
// eight million.
function isDerKey(der) {
  const read = derReader(der);
  try {
    const outer = read(0, 0x30);
    if (outer.end !== der.length) return false;
    const tag = der[outer.start];
    return (tag === 0x30 || tag === 0x02) && read(outer.start, tag).end <= outer.end;
  } catch {
    return false;
  }
}

function spkiType(der) {
  const read = derReader(der);
  const hex = ({ start, end }) => Array.from(der.slice(start, end), (b) => b.toString(16).padStart(2, "0")).join("");
  try {
    const algorithm = read(read(0, 0x30).start, 0x30);
    const oid = read(algorithm.start, 0x06);
    if (hex(oid) === "2a8648ce3d0201") {
      const crv = EC_CURVES[hex(read(oid.end, 0x06))];
      if (crv) return { kty: "EC", crv };
      throw new Error("curve");
    }
    const type = SPKI_TYPES[hex(oid)];
    if (type) return type;
  } catch {
    // fall through to the error below
  }
  throw new JoseError("ERR_JWK_INVALID", "not an RSA, EC (P-256/384/521) or Ed25519/Ed448 public key");
}

function keyFromPem(text) {
  const match = /^-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----$/.exec(text);
  if (!match) throw new JoseError("ERR_JWK_INVALID", "the PEM text is incomplete (BEGIN/END lines)");
  const label = match[1];
  if (label.includes("PRIVATE")) {
    throw new JoseError("ERR_JWK_INVALID", "this is a private key: paste the public key (a private key should never be pasted into a web page)");
  }
  if (label === "RSA PUBLIC KEY") {
    throw new JoseError("ERR_JWK_INVALID", "PKCS#1 RSA key: convert it with `openssl rsa -RSAPublicKey_in -pubout`");
  }
  if (label === "CERTIFICATE") {
    throw new JoseError("ERR_JWK_INVALID", "certificates are not read here: extract the key with `openssl x509 -pubkey -noout`");
  }
  if (label !== "PUBLIC KEY") throw new JoseError("ERR_JWK_INVALID", `unsupported PEM "${label}" (expected PUBLIC KEY)`);
  let der;
  try {
    der = Uint8Array.from(atob(match[2].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    throw new JoseError("ERR_JWK_INVALID", "the PEM body is not base64");
  }
  return { ...spkiType(der), spki: der, source: "pem" };
}

// Pasted key text -> a list of keys: a JWK, a JWKS ({"keys": [...]}) or a PEM public key.
export function parseKeyText(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let json;
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw new JoseError("ERR_JWK_INVALID", "the key is not valid JSON");
    }
    return parseJwks(json);
  }
  if (trimmed.startsWith("-----BEGIN")) return { keys: [keyFromPem(trimmed)], isSet: false };
  throw new JoseError("ERR_JWK_INVALID", "paste a JWK or JWKS (JSON) or a PEM public key (-----BEGIN PUBLIC KEY-----)");
}

export function parseJwks(json) {
  if (json !== null && typeof json === "object" && Array.isArray(json.keys)) {
    const keys = json.keys.map(keyFromJwk);
    const kids = keys.filter((key) => key.kid !== undefined).map((key) => key.kid);
    if (new Set(kids).size !== kids.length) throw new JoseError("ERR_JWK_INVALID", "two keys in the set share a kid");
    return { keys, isSet: true };
  }
  return { keys: [keyFromJwk(json)], isSet: false };
}

const ASYMMETRIC_MARKERS = ["-----BEGIN", "ssh-rsa", "ssh-ed25519", "ecdsa-sha2-", "ssh-dss"];

// The secret's bytes, however they were spelt (text, base64url, a JWK "k"), must not be key
// material: PEM or SSH text, a JWK, or a DER public or private key (jwk.refuse_asymmetric_secret).
function refuseAsymmetricSecret(secret) {
  const head = new TextDecoder("latin1").decode(secret.slice(0, 64));
  const text = head.trimStart();
  const looksAsymmetric = ASYMMETRIC_MARKERS.some((marker) => head.includes(marker))
    || (text.startsWith("{") && new TextDecoder("latin1").decode(secret).includes('"kty"'))
    || isDerKey(secret);
  if (looksAsymmetric) {
    throw new JoseError("ERR_JWK_INVALID", "this is key material, not an HMAC secret (a public key is never an HMAC secret)");
  }
}

// A shared secret as text (UTF-8) or base64url. Public-key text is refused as a secret: that is
// the algorithm-confusion attack (HS256 "signed" with the RSA public key), jwk.refuse_asymmetric_secret.
export function secretKey(text, encoding) {
  const trimmed = text.trim();
  if (ASYMMETRIC_MARKERS.some((marker) => trimmed.startsWith(marker)) || trimmed.startsWith("{")) {
    throw new JoseError("ERR_JWK_INVALID", "this is key text, not an HMAC secret: use 'Pasted key' (a public key is never an HMAC secret)");
  }
  const secret = encoding === "base64url" ? b64urlDecode(text, "secret") : new TextEncoder().encode(text);
  if (secret.length === 0) throw new JoseError("ERR_JWK_INVALID", "the secret is empty");
  refuseAsymmetricSecret(secret);
  return { keys: [{ kty: "oct", secret, source: "secret" }], isSet: false };
}

// -- verification -----------------------------------------------------------------------

function parseHeader(segment) {
  const header = parseObject(segment, "header", "ERR_JWS_MALFORMED");
  const alg = header.alg;
  if (typeof alg !== "string") throw new JoseError("ERR_JWS_MALFORMED", 'the header has no string "alg"');
  if (!Object.hasOwn(ALGORITHMS, alg)) {
    if (alg.toLowerCase() === "none") throw new JoseError("ERR_JOSE_ALG_UNSUPPORTED", 'alg "none" (unsigned tokens) is never accepted');
    throw new JoseError("ERR_JOSE_ALG_UNSUPPORTED", `unsupported algorithm ${JSON.stringify(alg.slice(0, 32))}`);
  }
  if ("crit" in header) throw new JoseError("ERR_JOSE_CRIT_UNSUPPORTED", "critical extensions (crit) are not supported");
  if ("b64" in header) throw new JoseError("ERR_JWS_MALFORMED", "unencoded payloads (b64, RFC 7797) are not supported");
  for (const name of ["kid", "typ", "cty"]) {
    if (name in header && typeof header[name] !== "string") {
      throw new JoseError("ERR_JWS_MALFORMED", `the header member "${name}" must be a string`);
    }
  }
  return header;
}

// Candidate keys, as KeySet.candidates / jws.verify_compact choose them.
function candidates(keySource, header) {
  const alg = header.alg;
  const kid = header.kid;
  if (!keySource.isSet) {
    const key = keySource.keys[0];
    if (!algorithmsFor(key).includes(alg)) {
      if (key.kty === "OKP" && key.crv === "Ed448") throw new JoseError("ERR_JOSE_ALG_UNSUPPORTED", ED448_MISSING);
      const need = HASH_BYTES[ALGORITHMS[alg].hash];
      const short = key.kty === "oct" && ALGORITHMS[alg].kty === "oct" && key.secret.length < need;
      const why = short
        ? `${alg} needs a secret of at least ${need} bytes (RFC 7518 §3.2)`
        : `algorithm ${alg} is not allowed for this ${describeKey(key)}`;
      throw new JoseError("ERR_JOSE_ALG_NOT_ALLOWED", why);
    }
    if (kid !== undefined && key.kid !== undefined && kid !== key.kid) {
      throw new JoseError("ERR_JWKS_NO_MATCHING_KEY", `token kid ${JSON.stringify(kid.slice(0, 64))} is not this key's kid ${JSON.stringify(key.kid)}`);
    }
    return [key];
  }
  const found = keySource.keys.filter((key) => (kid === undefined || key.kid === kid) && algorithmsFor(key).includes(alg));
  if (found.length === 0) {
    const which = kid === undefined ? "a token without kid" : `kid ${JSON.stringify(kid.slice(0, 64))}`;
    throw new JoseError("ERR_JWKS_NO_MATCHING_KEY", `no key in the set for ${which} and algorithm ${alg}`);
  }
  return found;
}

async function importFor(key, alg) {
  const spec = ALGORITHMS[alg];
  if (key.kty === "oct") {
    return crypto.subtle.importKey("raw", key.secret, { name: "HMAC", hash: spec.hash }, false, ["verify"]);
  }
  if (key.kty === "OKP" && key.crv === "Ed448") throw new JoseError("ERR_JOSE_ALG_UNSUPPORTED", ED448_MISSING);
  const params =
    key.kty === "RSA" ? { name: spec.name, hash: spec.hash }
    : key.kty === "EC" ? { name: "ECDSA", namedCurve: key.crv }
    : { name: "Ed25519" };
  let imported;
  try {
    imported = key.spki
      ? await crypto.subtle.importKey("spki", key.spki, params, false, ["verify"])
      : await crypto.subtle.importKey("jwk", key.jwk, params, false, ["verify"]);
  } catch (error) {
    // WebCrypto checks EC points are on their curve and the member sizes (RFC 8725 §3.4).
    throw new JoseError("ERR_JWK_INVALID", `the ${describeKey(key)} could not be imported (${error.name})`);
  }
  if (key.kty === "RSA" && imported.algorithm.modulusLength < MIN_RSA_BITS) {
    throw new JoseError("ERR_JWK_INVALID", `RSA key of ${imported.algorithm.modulusLength} bits: at least ${MIN_RSA_BITS} are needed (RFC 7518 §3.3)`);
  }
  return imported;
}

async function checkSignature(key, alg, signingInput, signature) {
  const spec = ALGORITHMS[alg];
  const imported = await importFor(key, alg);
  let params;
  if (spec.kty === "oct") params = { name: "HMAC" };
  else if (spec.name === "RSA-PSS") params = { name: "RSA-PSS", saltLength: HASH_BYTES[spec.hash] };
  else if (spec.kty === "RSA") params = { name: spec.name };
  else if (spec.kty === "EC") {
    // JWS carries ECDSA as raw R||S (RFC 7518 §3.4), WebCrypto's own format. R = 0 or S = 0
    // is the "psychic signature" (CVE-2022-21449): refused before the primitive sees it.
    if (signature.length !== 2 * spec.size) return false;
    const zero = (part) => part.every((byte) => byte === 0);
    if (zero(signature.slice(0, spec.size)) || zero(signature.slice(spec.size))) return false;
    params = { name: "ECDSA", hash: spec.hash };
  } else params = { name: "Ed25519" };
  return crypto.subtle.verify(params, imported, signature, signingInput);
}

function matches(value, expected) {
  return typeof value === "string" && value === expected;
}

// claims.validate with require=("exp",), leeway 0; iss and aud only when the caller gives them.
export function validateClaims(claims, now, { issuer = "", audience = "" } = {}) {
  const notes = [];
  if (!("exp" in claims)) throw new JoseError("ERR_JWT_MISSING_EXP", 'required claim "exp" is missing');
  // Each code spelled out (jotkit.codes), so that a search for it finds this line.
  const dateCodes = { exp: "ERR_JWT_INVALID_EXP", nbf: "ERR_JWT_INVALID_NBF", iat: "ERR_JWT_INVALID_IAT" };
  for (const [name, code] of Object.entries(dateCodes)) {
    if (name in claims && !isNumericDate(claims[name])) {
      throw new JoseError(code, `"${name}" must be a NumericDate (a JSON number)`);
    }
  }
  if (now >= claims.exp) throw new JoseError("ERR_JWT_EXPIRED", `token expired ${span(now - claims.exp)} ago (exp=${claims.exp})`);
  if ("nbf" in claims && now < claims.nbf) {
    throw new JoseError("ERR_JWT_NOT_YET_VALID", `token is not valid for another ${span(claims.nbf - now)} (nbf=${claims.nbf})`);
  }
  if ("iat" in claims && claims.iat > now) {
    throw new JoseError("ERR_JWT_INVALID_IAT", `token was issued ${span(claims.iat - now)} in the future (iat=${claims.iat})`);
  }
  if (issuer) {
    if (!matches(claims.iss, issuer)) throw new JoseError("ERR_JWT_INVALID_ISS", `unexpected issuer (${claims.iss === undefined ? "no iss" : `iss=${JSON.stringify(claims.iss)}`})`);
  } else {
    notes.push('issuer not checked (no expected "iss" given)');
  }
  if (audience) {
    const ok = Array.isArray(claims.aud) ? claims.aud.some((item) => matches(item, audience)) : matches(claims.aud, audience);
    if (!ok) throw new JoseError("ERR_JWT_INVALID_AUD", `token audience ${JSON.stringify(claims.aud)} is not ${JSON.stringify(audience)}`);
  } else if ("aud" in claims) {
    // The core refuses a token with an audience when the verifier names none (RFC 7519 §4.1.3);
    // here that is a note, so the page can show who the token is for before you say who you are.
    notes.push(`audience not checked: the token is for ${JSON.stringify(claims.aud)}; a jotkit verifier must name its audience or it refuses the token`);
  }
  return notes;
}

// Verify `token` with the keys of `keySource` ({keys, isSet}); resolve to a result or throw a
// JoseError. Order as jws.verify_compact: size, shape, header, algorithm vs key, payload
// encoding, signature, and only then the claims.
export async function verify(token, keySource, policy = {}, now = Date.now() / 1000) {
  if (!globalThis.crypto?.subtle) {
    throw new JoseError("ERR_WEBCRYPTO_UNAVAILABLE", "this browser gives no WebCrypto here: it needs a secure context (HTTPS, or http://localhost)");
  }
  const text = token.trim();
  if (text.length > MAX_TOKEN_BYTES) throw new JoseError("ERR_JWS_TOO_LARGE", `token is ${text.length} bytes, over the ${MAX_TOKEN_BYTES}-byte cap`);
  if (!/^[\x21-\x7e]*$/.test(text)) throw new JoseError("ERR_JWS_MALFORMED", "a token is ASCII text");
  const parts = text.split(".");
  if (parts.length !== 3) throw new JoseError("ERR_JWS_MALFORMED", `a compact JWS has 3 segments, this has ${parts.length}`);
  const header = parseHeader(parts[0]);
  const alg = header.alg;
  const keys = candidates(keySource, header);
  // The payload's encoding is checked before any signature work, its JSON only after (as core).
  b64urlDecode(parts[1], "payload");
  // One token, one spelling: a signature with stray bits is a signature error, as in the core.
  const signature = b64urlDecode(parts[2], "signature", "ERR_JWS_SIGNATURE_INVALID");
  const signingInput = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  let verifiedBy = null;
  let lastError = null;
  for (const key of keys) {
    try {
      if (await checkSignature(key, alg, signingInput, signature)) {
        verifiedBy = key;
        break;
      }
    } catch (error) {
      if (keys.length === 1) throw error;
      lastError = error;
    }
  }
  if (verifiedBy === null) {
    if (lastError && keys.length > 1 && lastError.code === "ERR_JOSE_ALG_UNSUPPORTED") throw lastError;
    const any = keys.length > 1 ? " with any candidate key" : "";
    throw new JoseError("ERR_JWS_SIGNATURE_INVALID", `${alg} signature does not verify${any}`);
  }
  const claims = parseObject(parts[1], "payload", "ERR_JWT_CLAIMS_INVALID");
  const notes = validateClaims(claims, now, policy);
  if (verifiedBy.hadPrivate) notes.push("the pasted JWK holds private material: only its public part was used. Never paste private keys into web pages.");
  return { alg, key: describeKey(verifiedBy), claims, notes };
}
