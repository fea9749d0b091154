/* engram/engram.h: the C API of engram, for serving engines written in C or any language with a
 * C FFI. It covers the inference path of Engram's conditional memory (DESIGN.md 2.3, 3):
 *
 *   token ids --engram_hash_chunk--> per-column hash values --engram_prefetch--> ticket
 *             --engram_ticket_wait / engram_ticket_copy (per layer)--> rows in caller buffers
 *
 * over a DeepSeek-V4.1 checkpoint served from DRAM (private or a shared /dev/shm file) or read in
 * place from its safetensors shards, optionally behind a hot-row cache. It is a thin layer over
 * the C++ API (engram/store.h, prefetch.h, v41_checkpoint.h, hasher.h, compressor.h); nothing
 * here is not also reachable from C++.
 *
 * Conventions (every function follows them unless its comment says otherwise):
 *  - C99. Sized integer types; opaque handles created by *_open / *_create and released by
 *    *_close / *_free. Releasing NULL is a no-op. Using a handle after releasing it, or releasing
 *    it twice, is undefined behaviour (as with free()).
 *  - Errors: functions that can fail return engram_status. ENGRAM_OK (0) is success; any other
 *    value mirrors engram::Errc, and engram_last_error() returns a message naming what was wrong
 *    and where (file, tensor, layer, position, value). The message is thread-local: it belongs to
 *    the thread that made the failing call and stays valid until that thread's next failing call.
 *    Successful calls leave it as it was. On failure, out-parameters are left untouched (a
 *    handle out-parameter is never set to a half-made object) unless the comment says otherwise.
 *  - No C++ exception crosses this boundary: every call catches everything, including
 *    std::bad_alloc (ENGRAM_E_NO_MEMORY).
 *  - Thread safety: a store and a hasher may be used from several threads at once (lookups,
 *    prefetches, hashing). A hash state and a ticket belong to one thread at a time.
 *  - Shapes are written [rows, cols], row-major. "Hash values" are per-column values as
 *    engram_hash_chunk returns them: [n_tokens, columns] for one layer, value of column c in
 *    [0, prime_c); the store adds each column's table offset itself.
 */
#ifndef ENGRAM_ENGRAM_H_
#define ENGRAM_ENGRAM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ---------------------------------------------------------------------------------- */

typedef enum engram_status {
  ENGRAM_OK = 0,
  ENGRAM_E_INVALID_ARGUMENT = 1, /* NULL where a value is needed, bad option, wrong buffer size */
  ENGRAM_E_PARSE = 2,            /* malformed file (config.json, safetensors header, tokenizer) */
  ENGRAM_E_OUT_OF_RANGE = 3,     /* id, hash value, layer or index outside its valid range */
  ENGRAM_E_IO = 4,               /* the OS refused: missing file, short read, failed read */
  ENGRAM_E_UNSUPPORTED = 5,      /* well-formed but not handled */
  ENGRAM_E_MISMATCH = 6,         /* inputs disagree (tensor vs config.json, tokenizer vs config) */
  ENGRAM_E_INTERNAL = 7,         /* a bug in engram: please report it */
  ENGRAM_E_NO_MEMORY = 8         /* an allocation failed */
} engram_status;

/* The message of this thread's last failed call ("" if none). Owned by the library; valid until
 * this thread's next failed call. Never NULL. */
const char* engram_last_error(void);
/* "ok", "invalid_argument", ... for a status; "unknown" for a value outside the enum. Static. */
const char* engram_status_name(engram_status status);

/* ---- Store: rows of a DeepSeek-V4.1 checkpoint ---------------------------------------------- */

typedef struct engram_store engram_store;

typedef enum engram_tier {
  ENGRAM_TIER_DRAM = 0, /* every row loaded into memory at open (or attached from shared_path) */
  ENGRAM_TIER_FILE = 1  /* rows read in place from the shards on every miss (io_uring / pread) */
} engram_tier;

typedef enum engram_cache_policy {
  ENGRAM_CACHE_S3FIFO = 0, /* S3-FIFO: cheap hits, resists one-off rows */
  ENGRAM_CACHE_LRU = 1
} engram_cache_policy;

/* How rows arrive in caller buffers. Per row of a V4.1 table (head_dim = 256):
 *   F32    head_dim floats, dequantized (e4m3 value * e8m0 scale, exact in fp32)
 *   BF16   head_dim bfloat16 bit patterns (uint16_t), the F32 value rounded to nearest even
 *   PACKED the table's own bytes: head_dim e4m3 bytes then head_dim/32 e8m0 scale bytes (264) */
typedef enum engram_row_output {
  ENGRAM_ROWS_F32 = 0,
  ENGRAM_ROWS_BF16 = 1,
  ENGRAM_ROWS_PACKED = 2
} engram_row_output;

/* Enum-valued fields and parameters are int32_t holding the enum's value, so the ABI does not
 * depend on how a compiler sizes an enum and any value a caller passes can be checked. */
typedef struct engram_store_options {
  int32_t tier;         /* an engram_tier; default ENGRAM_TIER_DRAM */
  uint64_t cache_bytes; /* hot-row cache in front of the tier; 0 (default) = none */
  int32_t cache_policy; /* an engram_cache_policy; default ENGRAM_CACHE_S3FIFO */
  int32_t direct;       /* file reads with O_DIRECT where the filesystem allows; 1 */
  int32_t use_io_uring; /* io_uring when available, else pread; default 1 */
  uint32_t queue_depth; /* io_uring reads in flight per gather; default 64 */
  int32_t huge_pages;   /* DRAM tier: madvise(MADV_HUGEPAGE); default 1 */
  /* DRAM tier only: a shared-memory file (e.g. "/dev/shm/engram-v41"). If it exists it is
   * attached read-only and checked, its checkpoint fingerprint included: one filled from another
   * checkpoint is ENGRAM_E_MISMATCH naming both. If not, it is created, filled and published;
   * of several processes creating it at once, one publishes and the others attach its file.
   * NULL (the default): private anonymous memory. */
  const char* shared_path;
  uint32_t prefetch_threads; /* fetch workers; 0 (default) = one per Engram layer */
  uint64_t staging_bytes;    /* budget for rows staged by live tickets; default 256 MiB */
  /* Read every table's e8m0 scale rows into memory at open (8 bytes a V4.1 row, about 3% of the
   * table) so that a row read from the shards is one read instead of two (data and scale live in
   * different tensors). File tier only: the DRAM tier loads rows sequentially and ignores it.
   * Default 0. */
  int32_t resident_scales;
  /* shared_path only: when attaching a file another process made, also checksum every row byte
   * (one pass over the table, see docs/serving.md for the cost); a changed byte is
   * ENGRAM_E_PARSE. Default 0. */
  int32_t verify_shared;
  /* shared_path only: permission bits of a file this call creates, exactly (the umask does not
   * apply); must include owner read (0400) and nothing above 0777. Default 0600 (owner only). */
  uint32_t shared_mode;
} engram_store_options;

/* Fills *opts with the defaults above. NULL is ignored. */
void engram_store_options_init(engram_store_options* opts);

/* Opens the V4.1 checkpoint in directory `checkpoint_dir` (config.json plus
 * model.safetensors.index.json and its shards, or a single model.safetensors). Every Engram
 * tensor (embed.weight F8_E4M3 [rows, head_dim], embed.scale F8_E8M0 [rows, head_dim/32], wkv,
 * q_weight, k_weight) is checked for name, dtype, shape and byte span before anything is served.
 * `opts` NULL means the defaults. On success *out owns the store; release with engram_store_close.
 * Blocks on: reading headers; for the DRAM tier, reading every row (seconds per GB) or attaching
 * the shared file (with verify_shared, one checksum pass over it: about 3 GB/s on one core).
 * Errors: ENGRAM_E_IO (missing files), ENGRAM_E_PARSE (malformed), ENGRAM_E_MISMATCH (tensor vs
 * config.json, or a shared file of another checkpoint), ENGRAM_E_INVALID_ARGUMENT (bad options). */
engram_status engram_store_open(const char* checkpoint_dir, const engram_store_options* opts,
                                engram_store** out);

/* Cancels fetches not yet started, waits for running ones, frees everything. Tickets may outlive
 * the store: their finished layers stay readable. NULL is a no-op. Blocks on running fetches. */
void engram_store_close(engram_store* store);

typedef struct engram_store_info {
  int64_t num_layers;            /* Engram layers (V4.1: 2) */
  int64_t columns;               /* hash columns per token and layer: (max_ngram - 1) * heads */
  int64_t head_dim;              /* values per row (V4.1: 256) */
  int64_t packed_row_bytes;      /* bytes per row for ENGRAM_ROWS_PACKED (V4.1: 264) */
  int64_t max_ngram;             /* V4.1: 4 */
  int64_t compressed_vocab_size; /* engram_compressed_vocab_size of config.json */
} engram_store_info;

engram_status engram_store_get_info(const engram_store* store, engram_store_info* out);
/* Layer `index` in [0, num_layers): its model layer id (V4.1: 1 and 14) and table rows.
 * Either out-pointer may be NULL. ENGRAM_E_OUT_OF_RANGE for a bad index. */
engram_status engram_store_layer(const engram_store* store, int64_t index, int64_t* layer_id,
                                 int64_t* rows);
/* Bytes one token's rows of one layer take in `output` form: columns * (head_dim * 4 | head_dim
 * * 2 | packed_row_bytes). Buffers for n tokens need n times this. */
engram_status engram_store_token_bytes(const engram_store* store, int32_t output, uint64_t* bytes);
/* A one-line description of the tiers, e.g. "cache(s3fifo, ...) -> file(io_uring, O_DIRECT, 3
 * files)". Owned by the store, valid until it is closed. NULL for a NULL store. */
const char* engram_store_describe(const engram_store* store);

/* Synchronous lookup: the rows of `n_tokens` tokens of Engram layer `layer_id`.
 * hash_values [n_tokens, columns] (per-column values, as engram_hash_chunk writes them);
 * out [n_tokens, columns, row] in `output` form, out_bytes must equal
 * n_tokens * engram_store_token_bytes(output). Blocks on the reads (file tier / cache misses).
 * Errors: ENGRAM_E_OUT_OF_RANGE for an unknown layer or a value outside [0, prime) of its column
 * (naming token, column and value; nothing is written), ENGRAM_E_INVALID_ARGUMENT for a wrong
 * out_bytes or NULL, ENGRAM_E_IO for a failed read (out is then partly written). */
engram_status engram_store_lookup(engram_store* store, int64_t layer_id, const int64_t* hash_values,
                                  uint64_t n_tokens, int32_t output, void* out, uint64_t out_bytes);

typedef struct engram_store_stats {
  uint64_t cache_hits;          /* rows served from the cache (0 without a cache) */
  uint64_t cache_misses;        /* rows the cache had to fetch from the tier */
  uint64_t cache_entries;       /* rows cached now */
  uint64_t cache_capacity_rows; /* rows the cache budget holds */
  uint64_t cache_evictions;
  uint64_t io_reads;        /* read calls that reached the kernel (file tier; DRAM: the load) */
  uint64_t io_bytes;        /* bytes those reads delivered */
  uint64_t io_direct_reads; /* of io_reads, those through O_DIRECT */
} engram_store_stats;

/* Counters since open. Thread-safe; a snapshot, not atomic across fields. */
engram_status engram_store_get_stats(const engram_store* store, engram_store_stats* out);

/* ---- Prefetch: all layers of a step at once, wait per layer --------------------------------- */

typedef struct engram_ticket engram_ticket;

/* One layer's part of a step: hash_values [n_tokens, columns] of Engram layer `layer_id`. */
typedef struct engram_layer_request {
  int64_t layer_id;
  const int64_t* hash_values;
  uint64_t n_tokens;
} engram_layer_request;

/* Checks every request (layer known, each layer at most once, every hash value in range: nothing
 * is started if one is wrong), starts every layer's fetch at once on the store's workers and
 * returns at once with *out owning a ticket (release with engram_ticket_free). The hash values
 * are copied: the caller's arrays may be reused on return. `step` is a caller's label.
 * Staging is charged to opts.staging_bytes: if live tickets leave too little room this fails
 * with ENGRAM_E_INVALID_ARGUMENT (free a ticket first) instead of blocking on them.
 * Blocks on: only the release of staging of freed tickets whose reads are still finishing. */
engram_status engram_prefetch(engram_store* store, int64_t step,
                              const engram_layer_request* requests, uint64_t n_requests,
                              int32_t output, engram_ticket** out);

/* Blocks until layer `layer_id` of the ticket is in. Returns the error of that layer's fetch
 * (e.g. ENGRAM_E_IO) if it failed, ENGRAM_E_OUT_OF_RANGE if the layer was not requested,
 * ENGRAM_E_INVALID_ARGUMENT if the fetch was cancelled (store closed before it started). */
engram_status engram_ticket_wait(engram_ticket* ticket, int64_t layer_id);
/* engram_ticket_wait, then copies the layer's rows into out [n_tokens, columns, row] in the
 * ticket's output form; out_bytes must equal n_tokens * engram_store_token_bytes(output)
 * (checked before waiting). May be called again for the same layer (copies again). */
engram_status engram_ticket_copy(engram_ticket* ticket, int64_t layer_id, void* out,
                                 uint64_t out_bytes);
/* *ready = 1 when the layer has finished (rows, error or cancelled) without blocking, else 0. */
engram_status engram_ticket_ready(const engram_ticket* ticket, int64_t layer_id, int32_t* ready);
/* Time from engram_prefetch to the layer's rows being in, and time waits blocked, in ns; 0 for a
 * layer not finished yet. Either out-pointer may be NULL. */
engram_status engram_ticket_timing(const engram_ticket* ticket, int64_t layer_id, int64_t* fetch_ns,
                                   int64_t* wait_ns);
/* Skips fetches not yet started; fetches already running finish into staging the ticket still
 * owns, which is returned once they are done. Does not block. NULL is a no-op. */
void engram_ticket_free(engram_ticket* ticket);

/* ---- Hashing: token ids -> per-column hash values ------------------------------------------- */

typedef struct engram_hasher engram_hasher;
typedef struct engram_hash_state engram_hash_state;

/* A hasher from an Engram config and a tokenizer. `config_path` is a config.json (V4.1 or demo
 * form) or a checkpoint directory holding one; `tokenizer_path` a Hugging Face tokenizer.json,
 * compressed as the demo does (DESIGN.md 2.1). ENGRAM_E_MISMATCH when config.json's
 * engram_compressed_vocab_size differs from the tokenizer's (every multiplier depends on it).
 * Blocks on: reading and compressing the tokenizer (about a second for a 128k vocabulary). */
engram_status engram_hasher_open(const char* config_path, const char* tokenizer_path,
                                 engram_hasher** out);
/* A hasher from a config and a precomputed compression lookup: lookup[raw id] = compressed id,
 * lookup_size raw ids, values a dense range 0..M-1 numbered in order of first appearance (as
 * engram's compressor writes them). The lookup is copied. */
engram_status engram_hasher_from_lookup(const char* config_path, const int64_t* lookup,
                                        uint64_t lookup_size, engram_hasher** out);
void engram_hasher_free(engram_hasher* hasher);

typedef struct engram_hasher_info {
  int64_t num_layers;
  int64_t columns;
  int64_t max_ngram;
  int64_t vocab_size; /* raw ids the lookup covers */
  int64_t compressed_vocab_size;
} engram_hasher_info;

engram_status engram_hasher_get_info(const engram_hasher* hasher, engram_hasher_info* out);
/* Layer id of layer `index` in [0, num_layers) (config order, the order of engram_hash_chunk). */
engram_status engram_hasher_layer_id(const engram_hasher* hasher, int64_t index, int64_t* layer_id);

/* Per-sequence lookback: the last max_ngram-1 compressed ids and dead flags, and the number of
 * positions consumed. A new state is an empty sequence. Small (under 200 bytes); copying it is
 * the snapshot for speculative-decoding rollback. */
engram_status engram_hash_state_create(engram_hash_state** out);
/* Back to an empty sequence. NULL is a no-op. */
void engram_hash_state_reset(engram_hash_state* state);
/* *dst = *src (both must exist). Roll back by copying a snapshot over the live state. */
engram_status engram_hash_state_copy(engram_hash_state* dst, const engram_hash_state* src);
/* Positions consumed so far. */
engram_status engram_hash_state_position(const engram_hash_state* state, int64_t* position);
void engram_hash_state_free(engram_hash_state* state);

/* Hashes the next n chunk positions of the state's sequence for every Engram layer, then advances
 * the state past them. ids [n] raw token ids; dead [n] (nonzero = dead position, e.g. an image
 * span: its own row is padding and it cuts the lookback of later tokens) or NULL for none;
 * out [num_layers, n, columns] in layer order (engram_hasher_layer_id), out_len its element
 * count (num_layers * n * columns). Hashing a sequence in chunks gives the same values as hashing
 * it whole. On any error nothing is advanced (out may be partly written).
 * Errors: ENGRAM_E_OUT_OF_RANGE for a raw id outside [0, vocab_size) at a live position (negative
 * ids pass through uncompressed, as in the reference), naming its position in the sequence;
 * ENGRAM_E_INVALID_ARGUMENT for NULL or a wrong out_len. n = 0 is a no-op. */
engram_status engram_hash_chunk(const engram_hasher* hasher, engram_hash_state* state,
                                const int64_t* ids, const uint8_t* dead, uint64_t n, int64_t* out,
                                uint64_t out_len);
/* One layer, without advancing the state: out [n, columns], out_len = n * columns. Follow with
 * engram_hash_advance once every wanted layer is hashed. */
engram_status engram_hash_chunk_layer(const engram_hasher* hasher, const engram_hash_state* state,
                                      int64_t layer_id, const int64_t* ids, const uint8_t* dead,
                                      uint64_t n, int64_t* out, uint64_t out_len);
/* Advances the state past a chunk (reads only its last max_ngram-1 ids). */
engram_status engram_hash_advance(const engram_hasher* hasher, engram_hash_state* state,
                                  const int64_t* ids, const uint8_t* dead, uint64_t n);

/* ---- Synthetic checkpoints (tests, examples, benchmarks) ------------------------------------ */

typedef struct engram_synthetic_options {
  const int64_t* layer_ids; /* NULL: V4.1's {1, 14} */
  uint64_t num_layer_ids;
  int64_t vocab_size;            /* prime-search start; rows per layer ~ 24x; default 1000 */
  int64_t compressed_vocab_size; /* written to config.json; default 99092 (V4.1's) */
  int32_t max_ngram;             /* default 4 */
  int64_t n_heads;               /* default 8 */
  int64_t head_dim;              /* multiple of 32; default 256 */
  int64_t hidden_size;           /* only wkv / q / k depend on it; default 64 */
  int64_t hc_mult;               /* default 4 */
  int32_t shards;                /* default 3 (1 writes model.safetensors, no index) */
  uint64_t seed;                 /* default 0 */
} engram_synthetic_options;

void engram_synthetic_options_init(engram_synthetic_options* opts);
/* Writes a V4.1 checkpoint with the real tensor names, dtypes and layout at reduced size into
 * `dir` (created if needed; files there of the same names are replaced). Values are random but
 * deterministic per seed. `opts` NULL means the defaults. */
engram_status engram_write_synthetic_v41(const char* dir, const engram_synthetic_options* opts);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENGRAM_ENGRAM_H_ */
