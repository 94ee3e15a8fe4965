// The responder's side of Noise_IKpsk2 up to the timestamp, in C++: the same
// checks, order and rejection names as harness/noise/responder.ts, on the
// primitives of noise_crypto.h. NoiseResponder is plain C++;
// NoiseResponderWrap is its N-API class.
#ifndef WGJIT_NOISE_RESPONDER_H
#define WGJIT_NOISE_RESPONDER_H

#include <napi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>

#include "noise_crypto.h"

namespace wgjit {

// Names as in src/handshake/verify.ts (VerifyRejection).
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

// Told the claimed static key after `s` decrypts, before `ss`. It may throw:
// secrets are wiped on the way out. An interface rather than std::function
// so that calling JavaScript back costs no allocation per initiation.
class ClaimedStatic {
 public:
  virtual void operator()(const Key& claimed) = 0;

 protected:
  ~ClaimedStatic() = default;
};

struct NoiseState;  // C, H, k of one initiation (noise_responder.cc)

class NoiseResponder {
 public:
  // Throws std::runtime_error if libsodium cannot start.
  NoiseResponder(const uint8_t private_key[WG_KEY_SIZE], size_t ss_cache_size);
  ~NoiseResponder();
  NoiseResponder(const NoiseResponder&) = delete;
  NoiseResponder& operator=(const NoiseResponder&) = delete;

  const Key& public_key() const { return public_key_; }
  // Never fails on any input: a rejection is a return value. Throws only
  // what on_claimed throws (or std::runtime_error if libb2 breaks).
  Rejection Verify(const uint8_t* message, size_t size, Verified* out, ClaimedStatic* on_claimed);
  // X25519 with the responder's key; false on a low-order (all-zero) result.
  bool Dh(const uint8_t peer[WG_KEY_SIZE], uint8_t shared[WG_KEY_SIZE]) const;

 private:
  using Message = std::array<uint8_t, WG_MSG_INITIATION_SIZE>;

  Rejection ConsumeInitiation(const Message& msg, NoiseState& s, Verified* out, ClaimedStatic* on_claimed);
  bool Mac1Valid(const Message& msg) const;
  bool StaticStatic(const Key& initiator, uint8_t ss[WG_KEY_SIZE]);

  Key private_key_{};
  Key public_key_{};
  Key ck0_{};
  Key h0_{};
  Key mac1_key_{};
  SsCache ss_cache_;
};

// class NoiseResponder(privateKey: Uint8Array(32), ssCacheSize: number)
//   publicKey: Buffer
//   verify(message: Uint8Array(148), onClaimed: ((key: string) => void) | undefined,
//          out: Uint8Array(16)): string | number
//     the initiator's key (base64) when verified, with the timestamp in
//     out[0..12) and the sender index (little-endian) in out[12..16); else the
//     index of the rejection in NoiseResponder.rejections.
//   dh(peer: Uint8Array(32)): Buffer | null
//   close(): void
// NoiseResponder.rejections: string[]
class NoiseResponderWrap : public Napi::ObjectWrap<NoiseResponderWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NoiseResponderWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value PublicKey(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value Dh(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  const std::shared_ptr<NoiseResponder>& Responder(Napi::Env env);

  std::shared_ptr<NoiseResponder> responder_;
};

}  // namespace wgjit

#endif  // WGJIT_NOISE_RESPONDER_H
