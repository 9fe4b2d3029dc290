// node make_keys.mjs OUT.json KID
// Writes a private JWKS ({"keys":[...]}) with one fresh 2048-bit RSA key for RS256, with that kid,
// for provider.mjs --keys. The file is written with mode 0600.
import * as crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [out, kid] = process.argv.slice(2);
if (!out || !kid) {
  process.stderr.write('usage: node make_keys.mjs OUT.json KID\n');
  process.exit(2);
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid,
  alg: 'RS256',
  use: 'sig',
};
writeFileSync(out, `${JSON.stringify({ keys: [jwk] })}\n`, { mode: 0o600 });
