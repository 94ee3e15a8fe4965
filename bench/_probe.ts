import { randomBytes } from 'node:crypto';
import { validateCreate, validatePatch } from '../src/authorize/peer.js';
import { PeerStore } from '../src/authorize/store.js';
import { startRedis } from '../test/support/redis.js';
const N = 50000;
const now = new Date();
const inputs = Array.from({ length: N }, (_, i) => ({ publicKey: randomBytes(32).toString('base64'), allowedIPs: [`10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}/32`, `fd00::${(i & 0xffff).toString(16)}/128`], ...(i % 4 === 0 ? { presharedKey: randomBytes(32).toString('base64') } : {}) }));
let t = performance.now();
const text = JSON.stringify({ items: inputs });
console.log('stringify µs/item', ((performance.now() - t) * 1000 / N).toFixed(2));
t = performance.now(); JSON.parse(text); console.log('parse µs/item', ((performance.now() - t) * 1000 / N).toFixed(2));
t = performance.now();
const items = inputs.map((inp) => { const r = validateCreate(inp, now); const { publicKey: _, ...f } = inp; const p = validatePatch(f); if (!r.ok || !p.ok) throw new Error(); return { record: r.value, patch: p.value }; });
console.log('validate µs/item', ((performance.now() - t) * 1000 / N).toFixed(2));
const server = await startRedis();
const store = PeerStore.connect(server.url);
await store.whenReady();
for (const dry of [true, false, false]) {
  t = performance.now();
  for (let i = 0; i < N; i += 1000) await store.upsertMany(items.slice(i, i + 1000), { dryRun: dry });
  console.log(dry ? 'dry' : 'real', 'upsertMany µs/item', ((performance.now() - t) * 1000 / N).toFixed(2));
}
await store.close(); await server.stop();
