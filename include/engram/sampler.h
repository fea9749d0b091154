// engram/sampler.h: picking the next token from a step's logits.
//
// The rule (one draw per call): logits / temperature -> softmax -> keep the top_k most likely
// ids (ties broken by the lower id), then the smallest prefix of those, most likely first, whose
// probability reaches top_p -> renormalize over what is kept -> draw with `rng` (one 64-bit word,
// its top 53 bits as a uniform in [0, 1)). Temperature 0 is greedy: the argmax (the lowest id
// among equal maxima) and no draw, so the RNG is left untouched.
// The same logits, options and RNG state give the same id on every machine: a seed fixes a
// generation's text.
//
// Errors: sample_token throws Errc::invalid_argument for empty logits or options outside their
// ranges (check_sampling names the option and the value).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace engram {

struct SamplingOptions {
  float temperature = 0.8f;  // >= 0; 0: greedy
  int64_t top_k = 40;        // >= 0; 0: every id
  float top_p = 0.95f;       // (0, 1]; 1: no nucleus cut
  uint64_t seed = 0;         // seeds the generator's mt19937_64 (not used by sample_token)
};

// Throws Errc::invalid_argument naming the first option outside its range.
void check_sampling(const SamplingOptions& options);

// The ids sample_token can return for these logits and their probabilities (renormalized over
// the kept set, summing to 1), most likely first. Temperature 0: the argmax with probability 1.
struct TokenDistribution {
  std::vector<int32_t> ids;
  std::vector<double> probs;
};
TokenDistribution sampling_distribution(std::span<const float> logits,
                                        const SamplingOptions& options);

// One token id in [0, logits.size()) drawn by the rule above.
int32_t sample_token(std::span<const float> logits, const SamplingOptions& options,
                     std::mt19937_64& rng);

}  // namespace engram
