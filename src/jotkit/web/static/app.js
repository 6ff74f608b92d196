// The page: wires the decoder and the tour to the DOM. Token text is untrusted input, so it
// only ever reaches the page through textContent, never innerHTML.
import {
  decode, describeTimes, JoseError, parseJwks, parseKeyText, secretKey, splitToken, verify, warnings,
} from "./jose.js";
import { boundThumbprint, describeProof, dpopAvailable, isProof, makeProof, tourKey } from "./dpop.js";

const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// Invisible and direction-changing characters (bidi overrides, zero-width, C1 controls...)
// would make the text shown differ from the claim's value: shown as \u escapes, as the CLI does
// (cli/display.py quote).
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu;

// One \uXXXX per UTF-16 unit, so a character past U+FFFF reads as its surrogate pair.
function escaped(character) {
  return character.split("").map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
}

function json(value) {
  const text = JSON.stringify(value, null, 2);
  return text.replace(UNPRINTABLE, (c) => (c === "\n" ? c : escaped(c)));
}

// -- decoder ----------------------------------------------------------------------------

function renderParts(container, parts) {
  const classes = ["part-header", "part-payload", "part-signature"];
  const nodes = [];
  parts.forEach((part, i) => {
    if (i > 0) nodes.push(document.createTextNode("."));
    const span = element("span", part, classes[i] ?? "part-extra");
    span.title = ["header", "payload", "signature"][i] ?? "extra segment";
    nodes.push(span);
  });
  container.replaceChildren(...nodes);
}

function renderWarnings(list, found) {
  if (found.length === 0) {
    list.replaceChildren(element("li", "None of the usual problems.", "ok"));
    return;
  }
  list.replaceChildren(
    ...found.map((warning) => {
      const item = element("li", warning.text, "warning");
      item.dataset.warning = warning.id;
      return item;
    }),
  );
}

function renderTimes(list, claims, now) {
  const nodes = [];
  for (const time of describeTimes(claims, now)) {
    const term = element("dt", `${time.label}`);
    if (!["status", "lifetime"].includes(time.claim)) term.append(" (", element("code", time.claim), ")");
    const value = element("dd", time.text);
    value.dataset.claim = time.claim;
    nodes.push(term, value);
  }
  if (nodes.length === 0) nodes.push(element("dt", "none"), element("dd", "no exp, nbf or iat claim"));
  list.replaceChildren(...nodes);
}

// What DPoP (RFC 9449) means for the decoded token: a proof, item by item, or a bound token.
// The thumbprint is computed asynchronously: `turn` drops a result a newer paste overtook.
let dpopTurn = 0;

function hideDpop() {
  dpopTurn += 1;
  $("dpop-explained").hidden = true;
  delete $("dpop-explained").dataset.kind;
}

function showDpop(kind, summary, items) {
  const nodes = [];
  for (const item of items) {
    const term = element("dt", item.term);
    term.append(" (", element("code", item.name), ")");
    const value = element("dd", item.text);
    value.dataset.claim = item.name;
    nodes.push(term, value);
  }
  $("dpop-summary").textContent = summary;
  $("dpop-details").replaceChildren(...nodes);
  $("dpop-explained").dataset.kind = kind;
  $("dpop-explained").hidden = false;
}

async function renderDpop(header, claims) {
  hideDpop();
  const turn = dpopTurn;
  const jkt = boundThumbprint(claims);
  if (isProof(header)) {
    const items = await describeProof(header, claims, Date.now() / 1000);
    if (turn !== dpopTurn) return;
    showDpop(
      "proof",
      "This is a DPoP proof (RFC 9449), not an access token. A client signs one for each request "
        + "with its own key, to show that it holds the key its access token is bound to. It is good "
        + "for one request (htm, htu), once (jti), for about a minute (iat): so it has no exp, and its "
        + "header embeds its public key on purpose (the warnings above are about access tokens).",
      items,
    );
  } else if (jkt !== null) {
    const items = [{ term: "bound to the key with thumbprint", name: "cnf.jkt", text: jkt }];
    if (tour.key?.thumbprint === jkt) {
      items.push({ term: "that key", name: "jwk", text: "this page's tour key: in IndexedDB, its private half cannot be exported" });
    }
    showDpop(
      "bound",
      "Sender-constrained (DPoP, RFC 9449): this token is bound to one key pair. A server accepts it "
        + "only as \"Authorization: DPoP\" together with a fresh proof signed by that key; as a Bearer "
        + "token, or with a proof by any other key, it is refused. A copy of it is useless without the "
        + "private key.",
      items,
    );
  }
}

function renderDecoder() {
  const token = $("token").value;
  $("verify-result").replaceChildren();
  delete $("verify-result").dataset.verdict;
  if (!token.trim()) {
    $("decoded").hidden = true;
    hideDpop();
    return;
  }
  $("decoded").hidden = false;
  renderParts($("token-parts"), splitToken(token));
  try {
    const { header, claims } = decode(token);
    const now = Date.now() / 1000;
    $("header-json").textContent = json(header);
    $("payload-json").textContent = json(claims);
    renderWarnings($("warnings"), warnings(header, claims, now, new TextEncoder().encode(token.trim()).length));
    renderTimes($("times"), claims, now);
    renderDpop(header, claims);
    $("decode-error").hidden = true;
    $("decoded-content").hidden = false;
  } catch (error) {
    hideDpop();
    $("decode-error").textContent = `Cannot decode: ${error.message}`;
    $("decode-error").hidden = false;
    $("decoded-content").hidden = true;
  }
}

function keySourceChoice() {
  return document.querySelector('input[name="key-source"]:checked').value;
}

function showKeyFields() {
  const choice = keySourceChoice();
  $("key-field").hidden = choice !== "key";
  $("secret-field").hidden = choice !== "secret";
}

async function serverKeys() {
  let response;
  try {
    response = await fetch(".well-known/jwks.json", { cache: "no-store", credentials: "omit" });
  } catch {
    throw new JoseError("ERR_JWKS_UNREACHABLE", "this server's JWKS (/.well-known/jwks.json) could not be fetched");
  }
  if (!response.ok) {
    throw new JoseError("ERR_JWKS_UNREACHABLE", `GET /.well-known/jwks.json answered ${response.status}`);
  }
  try {
    return parseJwks(await response.json());
  } catch (error) {
    if (error instanceof JoseError) throw error;
    throw new JoseError("ERR_JWK_INVALID", "this server's JWKS is not valid JSON");
  }
}

async function chosenKeys() {
  const choice = keySourceChoice();
  if (choice === "server") return serverKeys();
  if (choice === "key") return parseKeyText($("key").value);
  return secretKey($("secret").value, $("secret-encoding").value);
}

function showVerdict(verdict, title, message, code, notes = []) {
  const result = $("verify-result");
  result.dataset.verdict = verdict;
  const heading = element("p", undefined, "verdict");
  heading.append(element("strong", title), ` ${message}`);
  if (code) heading.append(" ", element("code", code));
  const nodes = [heading];
  if (notes.length > 0) nodes.push(element("ul", undefined, "notes"));
  for (const note of notes) nodes.at(-1).append(element("li", note));
  result.replaceChildren(...nodes);
}

async function onVerify(event) {
  event.preventDefault();
  const token = $("token").value;
  if (!token.trim()) {
    showVerdict("invalid", "Nothing to verify:", "paste a token first.");
    return;
  }
  showVerdict("pending", "Verifying…", "");
  try {
    const source = await chosenKeys();
    const policy = { issuer: $("issuer").value.trim(), audience: $("audience").value.trim() };
    const outcome = await verify(token, source, policy);
    showVerdict(
      "valid",
      "Valid:",
      `${outcome.alg} signature verified with the ${outcome.key}, and the token is within its time window.`,
      "",
      outcome.notes,
    );
  } catch (error) {
    const code = error instanceof JoseError ? error.code : "ERR_UNEXPECTED";
    const message = error instanceof JoseError ? error.message : `verification failed (${error.name})`;
    showVerdict("invalid", "Invalid:", message, code);
  }
}

// -- tour -------------------------------------------------------------------------------

// scheme: "DPoP" once the server bound the login's tokens to `key` (tourKey), else "Bearer".
// nonce: the last DPoP-Nonce the server sent (RFC 9449 §8), put in the next proof.
const tour = {
  access: null, loginAccess: null, refresh: null, loggedOut: null, reached: 0,
  scheme: "Bearer", key: null, nonce: null, meProof: null,
};

function abbreviate(token) {
  return typeof token === "string" && token.length > 40 ? `${token.slice(0, 24)}…(${token.length} chars)` : token;
}

function redacted(body) {
  if (body === null || typeof body !== "object") return body;
  const copy = { ...body };
  for (const name of ["access_token", "refresh_token", "id_token"]) {
    if (name in copy) copy[name] = abbreviate(copy[name]);
  }
  if ("password" in copy) copy.password = "••••••••";
  return copy;
}

async function send(method, path, { body, token, dpop }) {
  // Relative to the page, so that a server under a path (/tenant/) is called there; the
  // proof names that absolute URL.
  const url = new URL(`.${path}`, document.baseURI).href;
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const request = [`${method} ${path}`];
  const scheme = dpop ? "DPoP" : "Bearer";
  if (token) {
    headers.Authorization = `${scheme} ${token}`;
    request.push(`Authorization: ${scheme} ${abbreviate(token)}`);
  }
  let proof = null;
  if (dpop) {
    proof = await makeProof(tour.key, method, url, { accessToken: token, nonce: tour.nonce });
    headers.DPoP = proof;
    request.push(`DPoP: ${abbreviate(proof)}`);
  }
  if (body !== undefined) request.push(json(redacted(body)));
  try {
    const response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
    const nonce = response.headers.get("DPoP-Nonce");
    if (nonce) tour.nonce = nonce;
    const text = await response.text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: shown as text
    }
    return {
      request: request.join("\n"), status: response.status, statusText: response.statusText, body: parsed, text,
      proof, nonce, challenge: response.headers.get("WWW-Authenticate") ?? "",
    };
  } catch (error) {
    return { request: request.join("\n"), status: 0, statusText: `no answer (${error.name})`, body: null, text: "", proof };
  }
}

// The server wants a nonce in the proof (RFC 9449 §8 at the token endpoint, §9 at an API)
// and sent one: worth exactly one retry.
function asksForNonce(exchange) {
  if (!exchange.nonce) return false;
  if (exchange.status === 400) return exchange.body?.error === "use_dpop_nonce";
  return exchange.status === 401 && /error="use_dpop_nonce"/.test(exchange.challenge);
}

// `token`: sent in Authorization; `dpop`: with a proof (and the DPoP scheme for the token).
async function call(method, path, { body, token, dpop = false } = {}) {
  const exchange = await send(method, path, { body, token, dpop });
  if (!dpop || !asksForNonce(exchange)) return exchange;
  const retried = await send(method, path, { body, token, dpop });
  retried.request = `(first answer: ${exchange.status} use_dpop_nonce with a DPoP-Nonce; sent again with that nonce in the proof)\n${retried.request}`;
  return retried;
}

function showExchange(output, exchange, verdict) {
  const answer = exchange.body === null ? exchange.text : json(redacted(exchange.body));
  output.textContent = `${exchange.request}\n\n→ ${exchange.status} ${exchange.statusText}\n${answer}\n\n${verdict}`;
  output.dataset.status = String(exchange.status);
  output.hidden = false;
}

function serverSays(exchange) {
  const body = exchange.body ?? {};
  return [body.error, body.error_description].filter((part) => typeof part === "string").join(": ");
}

function failure(exchange) {
  const detail = serverSays(exchange);
  return `✘ Failed (${exchange.status}${detail ? `, ${detail}` : ""})`;
}

function enableSteps({ me = false, refresh = false, logout = false, replay = false }) {
  $("me-button").disabled = !me;
  $("refresh-button").disabled = !refresh;
  $("logout-button").disabled = !logout;
  $("replay-button").disabled = !replay;
}

// Steps open one at a time: a step's button is enabled once the step before it has worked
// (2 after login, 3 after /me, 4 after a refresh); earlier steps stay available.
function reach(step) {
  tour.reached = Math.max(tour.reached ?? 0, step);
  enableSteps({ me: tour.reached >= 2, refresh: tour.reached >= 3, logout: tour.reached >= 4 });
}

function showDecoded(token, headerOutput, payloadOutput) {
  try {
    const { header, claims } = decode(token);
    if (headerOutput) headerOutput.textContent = json(header);
    payloadOutput.textContent = json(claims);
  } catch (error) {
    if (headerOutput) headerOutput.textContent = `Cannot decode: ${error.message}`;
    payloadOutput.textContent = headerOutput ? "" : `Cannot decode: ${error.message}`;
  }
}

// The tour's DPoP key from IndexedDB (made on first use). Without WebCrypto (a page served
// over plain HTTP on another host than localhost) or IndexedDB, the tour runs with Bearer.
async function loadKey() {
  const note = $("dpop-key");
  note.hidden = false;
  if (!dpopAvailable()) {
    tour.key = null;
    note.textContent = "No DPoP here: this browser offers no WebCrypto or IndexedDB on this page (WebCrypto needs HTTPS or localhost), so the tokens are plain Bearer tokens.";
    return;
  }
  try {
    tour.key ??= await tourKey();
    const origin = tour.key.created ? "made on this visit" : "kept from an earlier visit";
    note.textContent = `Your DPoP key: ECDSA P-256 (ES256), ${origin}, in IndexedDB; its private half is not extractable. Thumbprint (RFC 7638): ${tour.key.thumbprint}`;
  } catch (error) {
    tour.key = null;
    note.textContent = `No DPoP key (${error.name}): the tokens are plain Bearer tokens.`;
  }
}

async function onLogin(event) {
  event.preventDefault();
  for (const id of ["me-output", "refresh-output", "refresh-token", "logout-output", "replay-output"]) {
    $(id).hidden = true;
  }
  $("open-proof").hidden = true;
  await loadKey();
  const body = { email: $("email").value.trim(), password: $("password").value };
  const exchange = await call("POST", "/login", { body, dpop: tour.key !== null });
  if (exchange.status === 200 && exchange.body && typeof exchange.body.access_token === "string") {
    tour.access = tour.loginAccess = exchange.body.access_token;
    tour.refresh = exchange.body.refresh_token;
    tour.loggedOut = null;
    tour.reached = 0;
    const bound = tour.key !== null && String(exchange.body.token_type).toLowerCase() === "dpop";
    tour.scheme = bound ? "DPoP" : "Bearer";
    const verdict = bound
      ? `✔ Logged in: a JWT access token and an opaque refresh token, both bound to your key (cnf.jkt = ${tour.key.thumbprint}).`
      : "✔ Logged in: a JWT access token and an opaque refresh token (Bearer: the server did not bind them to a key).";
    showExchange($("login-output"), exchange, verdict);
    showDecoded(tour.loginAccess, $("tour-header"), $("tour-payload"));
    $("login-token").hidden = false;
    reach(2);
  } else {
    showExchange($("login-output"), exchange, failure(exchange));
    $("login-token").hidden = true;
    enableSteps({});
  }
}

function dpopOn() {
  return tour.scheme === "DPoP";
}

async function onMe() {
  const exchange = await call("GET", "/me", { token: tour.access, dpop: dpopOn() });
  const proven = dpopOn() ? ", and the proof showed this browser holds the key the token is bound to" : "";
  const verdict = exchange.status === 200
    ? `✔ Accepted: the signature and claims checked out${proven}, with no session lookup.`
    : failure(exchange);
  showExchange($("me-output"), exchange, verdict);
  tour.meProof = exchange.proof;
  $("open-proof").hidden = !exchange.proof;
  if (exchange.status === 200) reach(3);
}

async function onRefresh() {
  const exchange = await call("POST", "/token/refresh", { body: { refresh_token: tour.refresh }, dpop: dpopOn() });
  if (exchange.status === 200 && exchange.body && typeof exchange.body.access_token === "string") {
    tour.access = exchange.body.access_token;
    tour.refresh = exchange.body.refresh_token;
    showExchange($("refresh-output"), exchange, "✔ New pair issued; the old refresh token is now spent.");
    // Step 1 keeps showing the token of step 1; the new one is shown here.
    showDecoded(tour.access, null, $("refresh-payload"));
    $("refresh-token").hidden = false;
    reach(4);
  } else {
    showExchange($("refresh-output"), exchange, failure(exchange));
  }
}

async function onLogout() {
  const exchange = await call("POST", "/logout", { token: tour.access, dpop: dpopOn() });
  if (exchange.status >= 200 && exchange.status < 300) {
    tour.loggedOut = tour.access;
    showExchange($("logout-output"), exchange, "✔ Logged out: the session is revoked.");
    enableSteps({ replay: true });
  } else {
    showExchange($("logout-output"), exchange, failure(exchange));
  }
}

async function onReplay() {
  const exchange = await call("GET", "/me", { token: tour.loggedOut, dpop: dpopOn() });
  let exp = "";
  try {
    const { claims } = decode(tour.loggedOut);
    const left = claims.exp - Date.now() / 1000;
    if (left > 0) exp = ` although it only expires in ${Math.round(left / 60)} min`;
  } catch {
    // the token decoded at login; nothing to add
  }
  const verdict = exchange.status === 401
    ? `✔ Rejected, as it should be: the token is revoked${exp}.\nThe server says: ${serverSays(exchange)}`
    : `✘ Unexpected: the server answered ${exchange.status} to a logged-out token.`;
  showExchange($("replay-output"), exchange, verdict);
}

function openInDecoder(token) {
  $("token").value = token ?? "";
  renderDecoder();
  $("decoder").scrollIntoView();
  $("token").focus();
}

// -- wiring -----------------------------------------------------------------------------

$("token").addEventListener("input", renderDecoder);
for (const radio of document.querySelectorAll('input[name="key-source"]')) {
  radio.addEventListener("change", showKeyFields);
}
$("verify-form").addEventListener("submit", onVerify);
$("login-form").addEventListener("submit", onLogin);
$("me-button").addEventListener("click", onMe);
$("refresh-button").addEventListener("click", onRefresh);
$("logout-button").addEventListener("click", onLogout);
$("replay-button").addEventListener("click", onReplay);
$("open-in-decoder").addEventListener("click", () => openInDecoder(tour.loginAccess));
$("open-proof").addEventListener("click", () => openInDecoder(tour.meProof));
showKeyFields();
renderDecoder();
document.body.dataset.ready = "true";
