// What a training checkpoint's trainer_state.json recorded, for the checks that every load makes
// (src/model/checkpoint.cpp) and the ones train / eval / generate make (src/model/trainer.cpp).
#pragma once

#include <optional>
#include <string>

namespace engram {

// The string value of `key` in dir/trainer_state.json; nothing when the file (a model saved
// without training) or the key (an older checkpoint) is absent. A malformed file, or a key whose
// value is not a string, is Errc::parse naming the file.
std::optional<std::string> recorded_state_string(const std::string& dir, const char* key);

}  // namespace engram
