// The size budget: the built wasm (pkg/, made by scripts/build.sh) must not grow past the
// gzip size recorded in tests/size-budget.json. Sizes are deterministic for a given build,
// so this is a test, unlike the timings in BENCHMARKS.md, which are only measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('the wasm stays within its gzip budget', () => {
  const budget = JSON.parse(readFileSync(join(root, 'tests/size-budget.json'), 'utf8'));
  const wasm = readFileSync(join(root, 'pkg/sotto_wasm_bg.wasm'));
  const gzip = gzipSync(wasm, { level: 9 }).length;
  console.log(`pkg/sotto_wasm_bg.wasm: ${wasm.length} bytes, ${gzip} gzip (budget ${budget.wasm_gzip_bytes})`);
  assert.ok(
    gzip <= budget.wasm_gzip_bytes,
    `the wasm is ${gzip} bytes gzipped, over its budget of ${budget.wasm_gzip_bytes}: cut it, or raise ` +
      'tests/size-budget.json deliberately (see BENCHMARKS.md)',
  );
});
