// panva's dpop package makes keys and proofs for jotkit to check, driven line by line.
// Each stdin line is a command, answered by one stdout line:
//   {"cmd": "keys", "algs": [...]} -> {alg: {jkt, jwk}}: a key pair per alg (generateKeyPair,
//     private key non-extractable), its thumbprint (calculateThumbprint) and public JWK
//   {"cmd": "proof", "alg", "htu", "htm", "nonce"?, "access_token"?} -> {"proof"} (generateProof)
//   {"cmd": "quit"}
import { createInterface } from "node:readline";
import * as dpop from "dpop";

const lines = createInterface({ input: process.stdin });
const say = (answer) => process.stdout.write(JSON.stringify(answer) + "\n");
const pairs = {};

for await (const line of lines) {
  const command = JSON.parse(line);
  if (command.cmd === "quit") break;
  if (command.cmd === "keys") {
    const made = {};
    for (const alg of command.algs) {
      pairs[alg] = await dpop.generateKeyPair(alg);
      made[alg] = {
        jkt: await dpop.calculateThumbprint(pairs[alg].publicKey),
        jwk: await crypto.subtle.exportKey("jwk", pairs[alg].publicKey),
        private_extractable: pairs[alg].privateKey.extractable,
      };
    }
    say(made);
  } else if (command.cmd === "proof") {
    const proof = await dpop.generateProof(
      pairs[command.alg], command.htu, command.htm, command.nonce, command.access_token,
    );
    say({ proof });
  } else {
    say({ error: `unknown command ${command.cmd}` });
  }
}
process.exit(0);
