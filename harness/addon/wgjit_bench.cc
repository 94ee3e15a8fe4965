// The benchmarks' addon: only the export table. Built apart from the
// product's addon (addon/) and never loaded by it; it compiles the
// product's crypto primitives (addon/noise_crypto.cc) to time them beside
// node's OpenSSL (crypto_bench.cc).
#include <napi.h>

#include "crypto_bench.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("benchCrypto", Napi::Function::New<wgjit::BenchCrypto>(env, "benchCrypto"));
  return exports;
}

}  // namespace

NODE_API_MODULE(wgjit_bench, Init)
