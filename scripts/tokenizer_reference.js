#!/usr/bin/env node
// tokenizer_reference.js: reference outputs from Hugging Face tokenizers (its Node binding,
// @anush008/tokenizers, installed under scripts/node/) for engram's tokenizer parity tests.
//
//   node scripts/tokenizer_reference.js encode TOKENIZER.json CASES.json OUT.json
//     CASES.json: [{"text": str, "add_special_tokens": bool}, ...]
//     OUT.json:   [{"ids": [...], "decoded": str, "decoded_skip_special": str}, ...]
//     (decoded* are HF's decode of the ids it produced, keeping / skipping special tokens)
//   node scripts/tokenizer_reference.js decode TOKENIZER.json IDS.json OUT.json
//     IDS.json: [[ids], ...] -> OUT.json: [{"decoded": str, "decoded_skip_special": str}, ...]
//   node scripts/tokenizer_reference.js normalize TOKENIZER.json STRINGS.json OUT.json
//     the compression normalizer (below) applied to each string of STRINGS.json
//   node scripts/tokenizer_reference.js compress TOKENIZER.json OUT.json
//     OUT.json: {"vocab_size", "compressed_vocab_size", "lookup": [...]} built like Engram's
//     demo (CompressedTokenizer): HF decode of each single id, HF's normalizer sequence.
'use strict';
const fs = require('fs');
const path = require('path');
const hf = require(path.join(__dirname, 'node', 'node_modules', '@anush008', 'tokenizers'));

async function encodeCases(tok, cases) {
  const out = [];
  for (const c of cases) {
    const enc = await tok.encode(c.text, null, { addSpecialTokens: c.add_special_tokens });
    const ids = enc.getIds();
    out.push({
      ids,
      decoded: await tok.decode(ids, false),
      decoded_skip_special: await tok.decode(ids, true),
    });
  }
  return out;
}

async function decodeRows(tok, rows) {
  const out = [];
  for (const ids of rows) {
    out.push({ decoded: await tok.decode(ids, false), decoded_skip_special: await tok.decode(ids, true) });
  }
  return out;
}

// Engram's CompressedTokenizer normalizer, from HF's own normalizers.
function compressionNormalizer() {
  const SENTINEL = '\uE000';
  return hf.sequenceNormalizer([
    hf.nfkcNormalizer(),
    hf.nfdNormalizer(),
    hf.stripAccentsNormalizer(),
    hf.lowercase(),
    replaceRegex('[ \\t\\r\\n]+', ' '),
    replaceRegex('^ $', SENTINEL),
    hf.stripNormalizer(true, true),
    hf.replace(SENTINEL, ' '),
  ]);
}

async function compress(tok) {
  const normalizer = compressionNormalizer();
  const n = tok.getVocabSize(true);
  const keyToNew = new Map();
  const lookup = new Array(n);
  for (let id = 0; id < n; ++id) {
    const text = await tok.decode([id], false);
    let key;
    if (text.includes('\uFFFD')) {
      key = tok.idToToken(id);
    } else {
      const norm = normalizer.normalizeString(text);
      key = norm ? norm : text;
    }
    let nid = keyToNew.get(key);
    if (nid === undefined) {
      nid = keyToNew.size;
      keyToNew.set(key, nid);
    }
    lookup[id] = nid;
  }
  return { vocab_size: n, compressed_vocab_size: keyToNew.size, lookup };
}

// The binding's replace() takes a literal string; a Replace normalizer with a regex pattern is
// built from its JSON form instead, through a throw-away tokenizer.
function replaceRegex(pattern, content) {
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: [],
    normalizer: { type: 'Replace', pattern: { Regex: pattern }, content },
    pre_tokenizer: null, post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
             end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: {}, merges: [] },
  };
  return hf.Tokenizer.fromString(JSON.stringify(json)).getNormalizer();
}

async function main() {
  const [mode, tokPath, a, b] = process.argv.slice(2);
  const tok = hf.Tokenizer.fromFile(tokPath);
  let result;
  let outPath;
  if (mode === 'encode') {
    result = await encodeCases(tok, JSON.parse(fs.readFileSync(a, 'utf8')));
    outPath = b;
  } else if (mode === 'decode') {
    result = await decodeRows(tok, JSON.parse(fs.readFileSync(a, 'utf8')));
    outPath = b;
  } else if (mode === 'normalize') {
    const normalizer = compressionNormalizer();
    result = JSON.parse(fs.readFileSync(a, 'utf8')).map((s) => normalizer.normalizeString(s));
    outPath = b;
  } else if (mode === 'compress') {
    result = await compress(tok);
    outPath = a;
  } else {
    throw new Error('usage: tokenizer_reference.js encode|decode|normalize|compress TOKENIZER.json ...');
  }
  fs.writeFileSync(outPath, JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
