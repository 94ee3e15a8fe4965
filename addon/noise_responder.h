// The responder's side of Noise_IKpsk2 up to the timestamp, in C++ on the
// OpenSSL 3 that node itself exports (no libcrypto link): the same checks,
// order and rejection names as src/handshake/responder.ts, without the
// per-call cost of node:crypto objects. NoiseResponder is plain C++;
// NoiseResponderWrap is its N-API class.
#ifndef WGJIT_NOISE_RESPONDER_H
#define WGJIT_NOISE_RESPONDER_H

#include <napi.h>
#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>

extern "C" {
#include "wg_wire.h"
}

namespace wgjit {

// Names as in src/handshake/responder.ts (VerifyRejection).
#define NOISE_REJECTIONS(X)                  \
  X(kLength, "length")                       \
  X(kType, "type")                           \
  X(kReserved, "reserved")                   \
  X(kMac1, "mac1")                           \
  X(kLowOrder, "low_order")                  \
  X(kStaticDecrypt, "static_decrypt")        \
  X(kTimestampDecrypt, "timestamp_decrypt")

enum class Rejection {
  kNone,
#define NOISE_REJECTION_ENUM(name, text) name,
  NOISE_REJECTIONS(NOISE_REJECTION_ENUM)
#undef NOISE_REJECTION_ENUM
};
const char* RejectionName(Rejection r);

using Key = std::array<uint8_t, WG_KEY_SIZE>;

struct Verified {
  Key initiator_key;
  std::array<uint8_t, WG_TIMESTAMP_SIZE> timestamp;
  uint32_t sender_index;
};

// ss = DH(S_priv, S_pub_initiator) per initiator key, least recently used
// first out. An attacker chooses the keys, so the capacity is bounded and
// the index is an ordered map (no hash to flood). Evicted secrets are wiped.
class SsCache {
 public:
  explicit SsCache(size_t capacity) : capacity_(capacity) {}
  ~SsCache();
  // True when cached; then *ok says whether the DH succeeded and ss holds it.
  bool Lookup(const Key& initiator, uint8_t ss[WG_KEY_SIZE], bool* ok);
  void Insert(const Key& initiator, const uint8_t ss[WG_KEY_SIZE], bool ok);

 private:
  struct Entry {
    Key initiator;
    Key ss;
    bool ok;
  };
  size_t capacity_;
  std::list<Entry> lru_;  // most recent first
  std::map<Key, std::list<Entry>::iterator> index_;
};

struct OpenSslDeleter {
  void operator()(EVP_PKEY* p) const;
  void operator()(EVP_PKEY_CTX* p) const;
  void operator()(EVP_MD* p) const;
  void operator()(EVP_MD_CTX* p) const;
  void operator()(EVP_MAC* p) const;
  void operator()(EVP_MAC_CTX* p) const;
  void operator()(EVP_CIPHER* p) const;
  void operator()(EVP_CIPHER_CTX* p) const;
};
template <typename T>
using OsslPtr = std::unique_ptr<T, OpenSslDeleter>;

class NoiseResponder {
 public:
  // Called with the claimed static key after `s` decrypts, before `ss`.
  // It may throw: secrets are wiped on the way out.
  using ClaimedStatic = std::function<void(const Key&)>;

  // Throws std::runtime_error if OpenSSL lacks an algorithm or refuses the key.
  NoiseResponder(const uint8_t private_key[WG_KEY_SIZE], size_t ss_cache_size);
  NoiseResponder(const NoiseResponder&) = delete;
  NoiseResponder& operator=(const NoiseResponder&) = delete;

  const Key& public_key() const { return public_key_; }
  // Never fails on any input: a rejection is a return value. Throws
  // std::runtime_error only if OpenSSL itself breaks (allocation failure).
  Rejection Verify(const uint8_t* message, size_t size, Verified* out, const ClaimedStatic& on_claimed);
  // X25519 with the responder's key; false on a low-order (all-zero) result.
  bool Dh(const uint8_t peer[WG_KEY_SIZE], uint8_t shared[WG_KEY_SIZE]);

 private:
  struct State;
  using Message = std::array<uint8_t, WG_MSG_INITIATION_SIZE>;

  Rejection ConsumeInitiation(const Message& msg, State& s, Verified* out, const ClaimedStatic& on_claimed);
  bool Mac1Valid(const Message& msg);
  bool StaticStatic(const Key& initiator, uint8_t ss[WG_KEY_SIZE]);
  void MixHash(State& s, const uint8_t* data, size_t size);
  void MixKey(State& s, const uint8_t* input, size_t size);
  void MixDh(State& s, const uint8_t dh[WG_KEY_SIZE]);
  bool DecryptAndHash(State& s, const uint8_t* sealed, size_t size, uint8_t* plain);
  void Kdf1(uint8_t t1[WG_KEY_SIZE], const uint8_t ck[WG_KEY_SIZE], const uint8_t* input, size_t size);
  void Kdf2(uint8_t t1[WG_KEY_SIZE], uint8_t t2[WG_KEY_SIZE], const uint8_t ck[WG_KEY_SIZE], const uint8_t* input, size_t size);

  struct Bytes {
    const void* data;
    size_t size;
  };
  void Hash(uint8_t out[WG_KEY_SIZE], std::initializer_list<Bytes> parts);
  void Hmac(uint8_t out[WG_KEY_SIZE], const uint8_t key[WG_KEY_SIZE], std::initializer_list<Bytes> parts);
  void Mac(uint8_t out[WG_MAC_SIZE], const uint8_t* data, size_t size);
  bool AeadDecrypt(const uint8_t key[WG_KEY_SIZE], const uint8_t* sealed, size_t size, const uint8_t ad[WG_KEY_SIZE], uint8_t* plain);

  OsslPtr<EVP_MD> blake2s_;
  OsslPtr<EVP_MD_CTX> hash_ctx_;
  OsslPtr<EVP_MAC> hmac_;
  OsslPtr<EVP_MAC_CTX> hmac_ctx_;
  OsslPtr<EVP_MAC> blake2s_mac_;
  OsslPtr<EVP_MAC_CTX> mac_ctx_;
  OsslPtr<EVP_CIPHER> aead_;
  OsslPtr<EVP_CIPHER_CTX> aead_ctx_;
  OsslPtr<EVP_PKEY> private_key_;
  OsslPtr<EVP_PKEY_CTX> import_ctx_;
  OsslPtr<EVP_PKEY_CTX> derive_ctx_;
  Key public_key_{};
  Key ck0_{};
  Key h0_{};
  Key mac1_key_{};
  SsCache ss_cache_;
};

// class NoiseResponder(privateKey: Uint8Array(32), ssCacheSize: number)
//   publicKey: Buffer
//   verify(message: Uint8Array, onClaimed?: (key: string) => void): VerifyResult
//   dh(peer: Uint8Array(32)): Buffer | null
//   close(): void
class NoiseResponderWrap : public Napi::ObjectWrap<NoiseResponderWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NoiseResponderWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value PublicKey(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value Dh(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  NoiseResponder& Responder(Napi::Env env);

  std::unique_ptr<NoiseResponder> responder_;
};

}  // namespace wgjit

#endif  // WGJIT_NOISE_RESPONDER_H
