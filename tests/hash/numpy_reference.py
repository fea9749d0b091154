"""Pure-NumPy Engram n-gram hashing, written to follow the public demo's NgramHashMapping
(`engram_demo_v1.py`: calculate_vocab_size_across_layers, _get_ngram_hashes, hash) line by line,
plus DeepSeek-V4.1's dead-token rule. The tests compare engram's C++ hasher with it bit for bit;
bench/bench_hash.py times it as the NumPy baseline.

Not imported by engram itself: it only depends on NumPy (and SymPy's isprime when present, as
the demo does).
"""

import numpy as np

try:
    from sympy import isprime
except ImportError:  # the demo uses SymPy; a deterministic Miller-Rabin gives the same answers

    def isprime(n):
        if n < 2:
            return False
        small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
        for p in small:
            if n % p == 0:
                return n == p
        d, s = n - 1, 0
        while d % 2 == 0:
            d //= 2
            s += 1
        for a in small:
            x = pow(a, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(s - 1):
                x = x * x % n
                if x == n - 1:
                    break
            else:
                return False
        return True


def find_next_prime(start, seen_primes):
    candidate = start + 1
    while True:
        if isprime(candidate) and candidate not in seen_primes:
            return candidate
        candidate += 1


class NumpyNgramHash:
    """The demo's NgramHashMapping without the tokenizer: `lookup` maps raw ids to compressed
    ids and `compressed_vocab_size` is len(CompressedTokenizer)."""

    def __init__(self, engram_vocab_size, max_ngram_size, n_head_per_ngram, layer_ids, lookup,
                 compressed_vocab_size, pad_id, seed):
        self.vocab_size_per_ngram = list(engram_vocab_size)
        self.max_ngram_size = max_ngram_size
        self.n_head_per_ngram = n_head_per_ngram
        self.layer_ids = list(layer_ids)
        self.lookup_table = np.asarray(lookup, dtype=np.int64)
        self.pad_id = int(self.lookup_table[pad_id])

        max_long = np.iinfo(np.int64).max
        m_max = int(max_long // compressed_vocab_size)
        half_bound = max(1, m_max // 2)
        self.layer_multipliers = {}
        for layer_id in self.layer_ids:
            g = np.random.default_rng(int(seed + 10007 * int(layer_id)))
            r = g.integers(low=0, high=half_bound, size=(self.max_ngram_size,), dtype=np.int64)
            self.layer_multipliers[layer_id] = r * 2 + 1
        self.vocab_size_across_layers = self._primes()

    def _primes(self):
        seen = set()
        out = {}
        for layer_id in self.layer_ids:
            per_layer = []
            for ngram in range(2, self.max_ngram_size + 1):
                heads = []
                start = self.vocab_size_per_ngram[ngram - 2] - 1
                for _ in range(self.n_head_per_ngram):
                    p = find_next_prime(start, seen)
                    seen.add(p)
                    heads.append(p)
                    start = p
                per_layer.append(heads)
            out[layer_id] = per_layer
        return out

    def primes(self, layer_id):
        return np.array([p for heads in self.vocab_size_across_layers[layer_id] for p in heads],
                        dtype=np.int64)

    def offsets(self, layer_id):
        p = self.primes(layer_id)
        return np.concatenate(([0], np.cumsum(p)[:-1])).astype(np.int64)

    def compress(self, input_ids, dead_mask=None):
        arr = np.asarray(input_ids, dtype=np.int64)
        live = arr >= 0
        if dead_mask is not None:
            live &= ~np.asarray(dead_mask, dtype=bool)
        out = arr.copy()
        out[live] = self.lookup_table[arr[live]]
        if dead_mask is not None:
            out[np.asarray(dead_mask, dtype=bool)] = self.pad_id
        return out

    def _get_ngram_hashes(self, x, layer_id, dead_mask=None):
        B, T = x.shape
        multipliers = self.layer_multipliers[layer_id]

        def shift_k(k, a, fill):
            if k == 0:
                return a
            return np.pad(a, ((0, 0), (k, 0)), mode="constant", constant_values=fill)[:, :T]

        base_shifts = [shift_k(k, x, self.pad_id) for k in range(self.max_ngram_size)]
        if dead_mask is not None:
            # V4.1: walking back from shift 0, the first dead (or before-start) position blocks
            # it and every older one.
            dead = np.asarray(dead_mask, dtype=bool)
            blocked = np.zeros((B, T), dtype=bool)
            for k in range(self.max_ngram_size):
                blocked = blocked | shift_k(k, dead, True)
                base_shifts[k] = np.where(blocked, self.pad_id, base_shifts[k])

        all_hashes = []
        for n in range(2, self.max_ngram_size + 1):
            tokens = base_shifts[:n]
            mix = tokens[0] * multipliers[0]
            for k in range(1, n):
                mix = np.bitwise_xor(mix, tokens[k] * multipliers[k])
            head_vocab_sizes = self.vocab_size_across_layers[layer_id][n - 2]
            for j in range(self.n_head_per_ngram):
                all_hashes.append((mix % int(head_vocab_sizes[j])).astype(np.int64, copy=False))
        return np.stack(all_hashes, axis=2)

    def hash(self, input_ids, dead_mask=None):
        x = self.compress(input_ids, dead_mask)
        return {layer_id: self._get_ngram_hashes(x, layer_id, dead_mask)
                for layer_id in self.layer_ids}
