// engram/data.h: every data header at once, kept so that existing includes still compile.
// Include what you use instead: engram/corpus.h (corpus files, Brown detagging, the chunk
// reader), engram/token_file.h (token file format, TokenFile, WindowSampler) and
// engram/tokenize_corpus.h (corpus -> token files, the held-out rules).
#pragma once

#include "engram/corpus.h"
#include "engram/token_file.h"
#include "engram/tokenize_corpus.h"
