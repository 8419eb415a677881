// Rewrites the results in BENCHMARKS.md (between its results markers) from what
// scripts/bench.sh measured: pkg/ sizes, criterion's estimates, bench/browser.mjs's and
// sotto-load's JSON. `node bench/report.mjs target/bench`
import { readFileSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname, relative, sep } from 'node:path';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] || join(root, 'target/bench');
const read = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null);
const sh = (cmd) => { try { return execSync(cmd, { encoding: 'utf8' }).trim(); } catch { return '?'; } };
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
const num = (n, d = 1) => (n === undefined || n === null || Number.isNaN(n) ? '–' : Number(n).toFixed(d));

// Machine and tools.
const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
const mem = Math.round(Number(/MemTotal:\s*(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) / 1048576);
const browser = read(join(out, 'browser.json')) || {};
const load = read(join(out, 'load.json'));
const lines = [];
lines.push(`Measured ${new Date().toISOString().slice(0, 10)} on ${cpu}, ${sh('nproc')} cores, ${mem} GiB, Linux ${sh('uname -r')}; ` +
  `${sh('rustc --version')}, Chromium ${browser.chromium ?? '?'}, Node.js ${process.version}. Reproduce everything with \`scripts/bench.sh\`.`);
lines.push('');

// 1. Size.
const size = (f) => {
  const bytes = readFileSync(join(root, f));
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
};
const wasm = size('pkg/sotto_wasm_bg.wasm');
const files = [['pkg/sotto_wasm_bg.wasm', wasm], ['pkg/sotto.global.js', size('pkg/sotto.global.js')],
  ['pkg/sotto.js', size('pkg/sotto.js')], ['pkg/sotto_wasm.js', size('pkg/sotto_wasm.js')], ['src/ui.css (inside the wasm)', size('src/ui.css')]];
const sum = (names) => names.reduce((a, n) => ({ raw: a.raw + files.find(([f]) => f === n)[1].raw, gzip: a.gzip + files.find(([f]) => f === n)[1].gzip }), { raw: 0, gzip: 0 });
const scriptTag = sum(['pkg/sotto_wasm_bg.wasm', 'pkg/sotto.global.js']);
const npm = sum(['pkg/sotto_wasm_bg.wasm', 'pkg/sotto.js', 'pkg/sotto_wasm.js']);
const budget = read(join(root, 'tests/size-budget.json'));
lines.push('### Size (`pkg/`, gzip -9)', '');
lines.push('| file | raw | gzip |', '|---|---:|---:|');
for (const [f, s] of files) lines.push(`| \`${f}\` | ${kb(s.raw)} | ${kb(s.gzip)} |`);
lines.push(`| **script-tag build** (wasm + \`sotto.global.js\`) | ${kb(scriptTag.raw)} | **${kb(scriptTag.gzip)}** |`);
lines.push(`| **npm build** (wasm + \`sotto.js\` + \`sotto_wasm.js\`) | ${kb(npm.raw)} | **${kb(npm.gzip)}** |`);
lines.push('');
lines.push(`Target: ≤ 150 KB gzip for the whole embed. References: stream-chat 105 KB and @sendbird/chat 189 KB ` +
  `(no UI, no encryption), vodozemac 106 KB (crypto only), matrix-sdk-crypto-wasm 2,159 KB. ` +
  `Budget (tests/size.test.mjs): wasm ≤ ${kb(budget.wasm_gzip_bytes)} gzip, now ${kb(wasm.gzip)}.`);
lines.push('');

// 2. Loading and 3. latency.
const L = browser.load_ms;
if (L) {
  lines.push(`### Loading: script start to \`loaded\` (Chromium, ${L.returning.n} runs each)`, '');
  lines.push('| visit | median | p95 | target |', '|---|---:|---:|---:|');
  lines.push(`| returning user (keys in IndexedDB) | ${num(L.returning.p50)} ms | ${num(L.returning.p95)} ms | ≤ 100 ms |`);
  lines.push(`| first visit (keys made, device registered) | ${num(L.first_visit.p50)} ms | ${num(L.first_visit.p95)} ms | ≤ 250 ms |`);
  lines.push('');
}
const T = browser.latency_ms;
if (T) {
  lines.push(`### Latency: \`threadSendMessage\` in one page to \`thread-message\` in another (1 KB, ${T.two.n} messages)`, '');
  lines.push('| thread | p50 | p95 | p99 | target | of which the send (p50) |', '|---|---:|---:|---:|---:|---:|');
  const row = (label, r, target) => lines.push(`| ${label} | ${num(r.p50)} ms | ${num(r.p95)} ms | ${num(r.p99)} ms | ${target} | ${num(r.send?.p50)} ms |`);
  row('two members (pairwise ratchet)', T.two, 'p50 ≤ 5, p99 ≤ 20 ms');
  if (T.fifty) row('50 members (sender keys)', T.fifty, '');
  lines.push('');
  lines.push('"The send" is `threadSendMessage` until it resolves: sealed, the key state stored, the envelopes stored by the server, the history saved.');
  lines.push('');
}

// 4. Cryptography.
const criterion = {};
const walk = (dir) => {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e === 'estimates.json' && p.includes(`${sep}new${sep}`)) {
      const name = relative(join(root, 'bench/target/criterion'), dirname(dirname(p))).split(sep).join('/');
      criterion[name] = JSON.parse(readFileSync(p, 'utf8')).mean.point_estimate / 1000;
    }
  }
};
walk(join(root, 'bench/target/criterion'));
const W = browser.crypto_us || {};
const rows = [
  ['session setup (X3DH both sides + first message)', 'sotto/session_setup', 'vodozemac/olm_session_setup', '≤ 500 µs'],
  ['1:1 message, encrypt + decrypt, direction alternating', 'sotto/ratchet_alternating', 'vodozemac/olm_alternating', '≤ 150 µs'],
  ['1:1 message, encrypt + decrypt, one direction', 'sotto/ratchet_one_way', 'vodozemac/olm_one_way', '≤ 50 µs'],
  ["group message to 100 members (the sender's work)", 'sotto/group_100', 'vodozemac/megolm', '≤ 100 µs'],
  ['HPKE seal + open (device linking)', 'sotto/hpke_seal_open', null, ''],
  ['AES-256-GCM encrypt + decrypt', 'sotto/aes_gcm', 'webcrypto/aes_gcm', ''],
];
lines.push('### Cryptography (µs per operation on 1 KB)', '');
lines.push('| operation | Sotto native | Sotto in Chromium (wasm) | reference in Chromium | target (browser) |', '|---|---:|---:|---:|---:|');
for (const [label, ours, theirs, target] of rows) {
  const ref = theirs ? `${num(W[theirs])} (${theirs.startsWith('webcrypto') ? 'WebCrypto' : theirs.replace('vodozemac/', 'vodozemac ')}${theirs === 'vodozemac/megolm' ? ', encrypt + decrypt' : ''})` : '–';
  lines.push(`| ${label} | ${num(criterion[ours.replace('/', '_')])} | ${num(W[ours])} | ${ref} | ${target} |`);
}
const native = (k) => criterion[k.replace('/', '_')] !== undefined ? `${num(criterion[k.replace('/', '_')])} µs` : '–';
lines.push('');
lines.push(`vodozemac natively, same machine: Olm setup ${native('vodozemac/olm_session_setup')}, alternating ${native('vodozemac/olm_alternating')}, ` +
  `one way ${native('vodozemac/olm_one_way')}, Megolm ${native('vodozemac/megolm')}.`);
lines.push('');

// 5. The server.
if (load) {
  lines.push('### The server under load (`sotto-load`: real sign-in, WebSockets and acknowledgements; 1 KB envelopes)', '');
  lines.push('| devices | connections held | sent | delivered | deliveries/s | p50 | p99 | server peak RSS | server CPU |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of load.levels) {
    lines.push(`| ${r.devices} | ${r.connections_held} | ${r.sent} | ${r.delivered}${r.sent !== r.delivered ? ' **LOST**' : ''} | ${num(r.deliveries_per_second, 0)} | ${num(r.latency_ms_p50)} ms | ${num(r.latency_ms_p99)} ms | ${num(r.server_peak_rss_mib, 0)} MiB | ${num(r.server_cpu_seconds)} s |`);
  }
  lines.push('');
  lines.push('Targets: ≥ 10,000 connected devices, ≥ 20,000 deliveries/s, p99 ≤ 50 ms, none lost. The load generator and the server share the machine\'s cores.');
  lines.push('');
}

// 6. One node on SQLite, one on PostgreSQL, two on PostgreSQL + NATS, side by side.
const configurations = ['load.json', 'load-postgres.json', 'load-cluster.json']
  .map((f) => read(join(out, f)))
  .filter(Boolean)
  .map((r) => ({ name: r.configuration ?? '1 node on SQLite', r: r.levels[r.levels.length - 1] }));
if (configurations.length > 1) {
  const parts = ['node0', 'node1', 'postgres', 'nats', 'generator'];
  lines.push('### Storage and nodes compared (the largest level of each run)', '');
  lines.push('| configuration | devices | delivered (sent) | deliveries/s | p50 | p99 | CPU ms per 1,000 deliveries: ' + parts.join(' / ') + ' |',
    '|---|---:|---:|---:|---:|---:|---|');
  for (const { name, r } of configurations) {
    const per = r.cpu_ms_per_1000_deliveries ?? {};
    const cpu = parts.map((p) => (per[p] === undefined || (p === 'node1' && !name.startsWith('2')) ? '–' : num(per[p], 0))).join(' / ');
    lines.push(`| ${name} | ${r.devices} | ${r.delivered}${r.sent !== r.delivered ? ' **LOST**' : ''} (${r.sent}) | ${num(r.deliveries_per_second, 0)} | ${num(r.latency_ms_p50)} ms | ${num(r.latency_ms_p99)} ms | ${cpu} |`);
  }
  lines.push('');
  lines.push('On 2 cores every component shares the machine, so deliveries per second here say little about a ' +
    'cluster; the CPU each component spends per 1,000 deliveries does: a node on a core of its own, with ' +
    'PostgreSQL and NATS elsewhere, delivers about 1,000,000 / (its ms per 1,000) per second, and the ' +
    'database needs a core per (1,000,000 / its ms per 1,000) deliveries per second across all nodes.');
  lines.push('');
}

const doc = join(root, 'BENCHMARKS.md');
const text = readFileSync(doc, 'utf8');
const begin = '<!-- results:begin -->';
const end = '<!-- results:end -->';
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < 0) throw new Error('BENCHMARKS.md lacks its results markers');
writeFileSync(doc, text.slice(0, i + begin.length) + '\n' + lines.join('\n') + '\n' + text.slice(j));
console.log(lines.join('\n'));
