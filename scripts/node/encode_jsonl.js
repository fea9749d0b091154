// encode_jsonl.js: HF tokenizers' (Node binding) reference encoding, for engram's tests.
//
//   node scripts/node/encode_jsonl.js TOKENIZER_JSON TEXTS_JSONL > OUT_JSONL
// TEXTS_JSONL holds one JSON string per line. Each output line is {"ids": [...], "decoded": "..."}:
// the ids of encode(text, addSpecialTokens=false) and decode(ids, skipSpecialTokens=false).
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, 'node_modules', '@anush008', 'tokenizers'));

async function main() {
  const [tokPath, textsPath] = process.argv.slice(2);
  if (!tokPath || !textsPath) {
    process.stderr.write('usage: node encode_jsonl.js TOKENIZER_JSON TEXTS_JSONL\n');
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(tokPath);
  const lines = fs.readFileSync(textsPath, 'utf8').split('\n').filter((l) => l.length > 0);
  const out = [];
  for (const line of lines) {
    const text = JSON.parse(line);
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const ids = Array.from(enc.getIds());
    const decoded = await tok.decode(ids, false);
    out.push(JSON.stringify({ ids, decoded }));
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
