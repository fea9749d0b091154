"""Prints what scripts/demo.sh computed: tokens, vocabulary compression, and hash ids.

Reads the JSON files that `engram encode`, `engram compress` and `engram hash` wrote; it computes
nothing itself beyond counting, so every number shown comes from the engram binary.
"""
import json
import sys


def main(ids_path, lookup_path, hash_path, tokenizer_path):
    ids = json.load(open(ids_path))["input_ids"][0]
    comp = json.load(open(lookup_path))
    hashed = json.load(open(hash_path))["hash_ids"]
    vocab = json.load(open(tokenizer_path, encoding="utf-8"))
    id_to_tok = {v: k for k, v in vocab["model"]["vocab"].items()}
    for t in vocab.get("added_tokens", []):
        id_to_tok[t["id"]] = t["content"]

    n, m = comp["vocab_size"], comp["compressed_vocab_size"]
    lookup = comp["lookup"]
    print(f"== tokens: {len(ids)}")
    print("   first 12:", [(i, id_to_tok.get(i, "?")) for i in ids[:12]])
    print(f"== compression: {n} ids -> {m} compressed ids ({100.0 * (n - m) / n:.3f}% smaller)")
    groups = {}
    for raw in ids:
        groups.setdefault(lookup[raw], set()).add(raw)
    shared = [sorted(g) for g in groups.values() if len(g) > 1]
    if shared:
        print("   tokens of this text that share a compressed id:",
              [[id_to_tok.get(i, "?") for i in g] for g in shared[:5]])
    for layer, rows in hashed.items():
        seq = rows[0]
        print(f"== layer {layer}: hash ids [{len(rows)}][{len(seq)}][{len(seq[0])}] "
              "(per column: n-gram order major, heads minor, before column offsets)")
        for t in range(min(3, len(seq))):
            print(f"   position {t}: {seq[t]}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
