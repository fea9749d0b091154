/* store_example.c: the serving loop of Engram's conditional memory through the C API.
 *
 *   store_example --synthetic DIR            writes a small synthetic DeepSeek-V4.1 checkpoint
 *                                            into DIR and hashes with an identity compression
 *   store_example CHECKPOINT_DIR TOKENIZER   a real checkpoint and its tokenizer.json
 *
 * Steps: open the store (file tier behind a small S3-FIFO cache), build a hasher, hash a token
 * sequence in two chunks with one per-sequence state (checked equal to hashing it whole), prefetch
 * every Engram layer of the second chunk at once, wait for and copy each layer's rows, compare
 * them with a synchronous lookup, print a few values and the store's counters. Exits non-zero
 * on any error, printing engram_last_error(). Built as strict C99 (see CMakeLists.txt).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/engram.h"

/* Runs an engram call; on failure prints where and why, and jumps to the cleanup. */
#define CHECK(call)                                                            \
  do {                                                                         \
    engram_status st_ = (call);                                                \
    if (st_ != ENGRAM_OK) {                                                    \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call, \
              engram_status_name(st_), engram_last_error());                   \
      goto done;                                                               \
    }                                                                          \
  } while (0)

#define N_TOKENS 12
#define FIRST_CHUNK 7
#define SYNTHETIC_VOCAB 1000 /* raw ids = compressed ids of the synthetic checkpoint */

int main(int argc, char** argv) {
  int rc = 1;
  engram_store* store = NULL;
  engram_hasher* hasher = NULL;
  engram_hash_state* state = NULL;
  engram_hash_state* whole_state = NULL;
  engram_ticket* ticket = NULL;
  int64_t* lookup = NULL;
  int64_t* chunked = NULL; /* [layers, N_TOKENS, columns] from two chunks, layer-major */
  int64_t* whole = NULL;   /* the same from one call */
  int64_t* second = NULL;  /* [layers, N_TOKENS - FIRST_CHUNK, columns]: the second chunk */
  float* rows = NULL;
  float* direct = NULL;
  engram_store_options opts;
  engram_store_info info;
  engram_store_stats stats;
  engram_layer_request requests[8];
  const char* checkpoint;
  int64_t ids[N_TOKENS];
  uint64_t token_bytes, per_layer, i;
  int64_t layer, num_layers, first_n = FIRST_CHUNK, second_n = N_TOKENS - FIRST_CHUNK;

  if (argc == 3 && strcmp(argv[1], "--synthetic") == 0) {
    engram_synthetic_options so;
    engram_synthetic_options_init(&so);
    so.compressed_vocab_size = SYNTHETIC_VOCAB;
    checkpoint = argv[2];
    CHECK(engram_write_synthetic_v41(checkpoint, &so));
    lookup = malloc(SYNTHETIC_VOCAB * sizeof(int64_t));
    if (!lookup) goto done;
    for (i = 0; i < SYNTHETIC_VOCAB; ++i) lookup[i] = (int64_t)i;
    CHECK(engram_hasher_from_lookup(checkpoint, lookup, SYNTHETIC_VOCAB, &hasher));
  } else if (argc == 3) {
    checkpoint = argv[1];
    CHECK(engram_hasher_open(checkpoint, argv[2], &hasher));
  } else {
    fprintf(stderr, "usage: %s --synthetic DIR | %s CHECKPOINT_DIR TOKENIZER_JSON\n", argv[0],
            argv[0]);
    return 2;
  }

  engram_store_options_init(&opts);
  opts.tier = ENGRAM_TIER_FILE;
  opts.cache_bytes = 1u << 20;
  opts.cache_policy = ENGRAM_CACHE_S3FIFO;
  CHECK(engram_store_open(checkpoint, &opts, &store));
  CHECK(engram_store_get_info(store, &info));
  num_layers = info.num_layers;
  if (num_layers > 8) {
    fprintf(stderr, "this example handles at most 8 Engram layers\n");
    goto done;
  }
  printf("store: %s\n", engram_store_describe(store));
  printf("%" PRId64 " Engram layers, %" PRId64 " hash columns, rows of %" PRId64 " values\n",
         num_layers, info.columns, info.head_dim);

  /* A token sequence: any raw ids below the vocabulary size. */
  for (i = 0; i < N_TOKENS; ++i) ids[i] = (int64_t)((i * 37 + 11) % SYNTHETIC_VOCAB);

  /* Hash it in two chunks (as chunked prefill or decode would), then whole. */
  per_layer = (uint64_t)info.columns;
  chunked = malloc((size_t)(num_layers * N_TOKENS) * per_layer * sizeof(int64_t));
  whole = malloc((size_t)(num_layers * N_TOKENS) * per_layer * sizeof(int64_t));
  second = malloc((size_t)(num_layers * second_n) * per_layer * sizeof(int64_t));
  if (!chunked || !whole || !second) goto done;
  CHECK(engram_hash_state_create(&state));
  CHECK(engram_hash_chunk(hasher, state, ids, NULL, (uint64_t)first_n, chunked,
                          (uint64_t)(num_layers * first_n) * per_layer));
  CHECK(engram_hash_chunk(hasher, state, ids + first_n, NULL, (uint64_t)second_n, second,
                          (uint64_t)(num_layers * second_n) * per_layer));
  CHECK(engram_hash_state_create(&whole_state));
  CHECK(engram_hash_chunk(hasher, whole_state, ids, NULL, N_TOKENS, whole,
                          (uint64_t)(num_layers * N_TOKENS) * per_layer));
  for (layer = 0; layer < num_layers; ++layer) {
    const int64_t* w = whole + (uint64_t)(layer * N_TOKENS) * per_layer;
    const int64_t* a = chunked + (uint64_t)(layer * first_n) * per_layer;
    const int64_t* b = second + (uint64_t)(layer * second_n) * per_layer;
    if (memcmp(w, a, (size_t)first_n * per_layer * sizeof(int64_t)) != 0 ||
        memcmp(w + (uint64_t)first_n * per_layer, b,
               (size_t)second_n * per_layer * sizeof(int64_t)) != 0) {
      fprintf(stderr, "layer index %" PRId64 ": chunked hashing differs from whole\n", layer);
      goto done;
    }
  }
  printf("hashed %d tokens in chunks of %d + %d: equal to hashing them whole\n", N_TOKENS,
         FIRST_CHUNK, N_TOKENS - FIRST_CHUNK);

  /* Step entry: prefetch every layer's rows of the second chunk at once. */
  for (layer = 0; layer < num_layers; ++layer) {
    CHECK(engram_hasher_layer_id(hasher, layer, &requests[layer].layer_id));
    requests[layer].hash_values = second + (uint64_t)(layer * second_n) * per_layer;
    requests[layer].n_tokens = (uint64_t)second_n;
  }
  CHECK(engram_prefetch(store, 1, requests, (uint64_t)num_layers, ENGRAM_ROWS_F32, &ticket));

  /* ... earlier transformer layers would run here ... then each Engram layer waits for its own. */
  CHECK(engram_store_token_bytes(store, ENGRAM_ROWS_F32, &token_bytes));
  rows = malloc((size_t)(token_bytes * (uint64_t)second_n));
  direct = malloc((size_t)(token_bytes * (uint64_t)second_n));
  if (!rows || !direct) goto done;
  for (layer = 0; layer < num_layers; ++layer) {
    const int64_t id = requests[layer].layer_id;
    int64_t fetch_ns = 0;
    CHECK(engram_ticket_copy(ticket, id, rows, token_bytes * (uint64_t)second_n));
    CHECK(engram_ticket_timing(ticket, id, &fetch_ns, NULL));
    CHECK(engram_store_lookup(store, id, requests[layer].hash_values, (uint64_t)second_n,
                              ENGRAM_ROWS_F32, direct, token_bytes * (uint64_t)second_n));
    if (memcmp(rows, direct, (size_t)(token_bytes * (uint64_t)second_n)) != 0) {
      fprintf(stderr, "layer %" PRId64 ": prefetched rows differ from a direct lookup\n", id);
      goto done;
    }
    printf("layer %" PRId64 ": %" PRId64 " rows in %.1f us; token 0 column 0 starts %g %g %g %g\n",
           id, second_n * info.columns, (double)fetch_ns / 1e3, rows[0], rows[1], rows[2], rows[3]);
  }

  CHECK(engram_store_get_stats(store, &stats));
  printf("cache: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " rows cached; io: %" PRIu64
         " reads, %" PRIu64 " bytes (%" PRIu64 " O_DIRECT)\n",
         stats.cache_hits, stats.cache_misses, stats.cache_entries, stats.io_reads, stats.io_bytes,
         stats.io_direct_reads);
  rc = 0;

done:
  engram_ticket_free(ticket);
  engram_store_close(store);
  engram_hash_state_free(whole_state);
  engram_hash_state_free(state);
  engram_hasher_free(hasher);
  free(direct);
  free(rows);
  free(second);
  free(whole);
  free(chunked);
  free(lookup);
  return rc;
}
