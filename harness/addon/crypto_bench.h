// A bench hook, never on the packet path: what each candidate crypto backend
// costs, timed in C++ with no JavaScript between operations, so that bench/
// can set the responder's throughput against the raw rates in the same run.
#ifndef WGJIT_CRYPTO_BENCH_H
#define WGJIT_CRYPTO_BENCH_H

#include <napi.h>

namespace wgjit {

// benchCrypto(op: string, iterations: number): number, nanoseconds of the
// calling thread's CPU time per op (setup and checks not counted):
//   x25519:libsodium           the responder's DH (noise_crypto.h)
//   x25519:openssl-import      node's OpenSSL 3 as the responder used it
//                              before: EVP_PKEY_fromdata of the peer's raw
//                              key, then EVP_PKEY_derive
//   x25519:openssl-reuse       the cheapest public OpenSSL path found: one
//                              peer EVP_PKEY refilled per DH
//   symmetric:libb2+libsodium  the hashing and AEAD of one initiation (mac1,
//                              3 HASH, 8 HMAC, 2 AEAD opens), as the
//                              responder does them
//   symmetric:openssl          the same on node's OpenSSL EVP, as the
//                              responder did them before
// Each op first checks that it computes what libsodium/libb2 compute.
Napi::Value BenchCrypto(const Napi::CallbackInfo& info);

}  // namespace wgjit

#endif  // WGJIT_CRYPTO_BENCH_H
