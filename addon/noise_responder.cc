#include "noise_responder.h"

#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>

namespace wgjit {

namespace {

constexpr char kConstruction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
constexpr char kIdentifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
constexpr char kLabelMac1[] = "mac1----";
constexpr uint8_t kByte1 = 1;
constexpr uint8_t kByte2 = 2;
// Buffer reserved for ChaCha20-Poly1305's longest handshake plaintext.
constexpr size_t kMaxPlain = WG_KEY_SIZE;

uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

/* ---------- ss cache ---------- */

SsCache::~SsCache() {
  for (Entry& e : lru_) Wipe(e.ss.data(), e.ss.size());
}

bool SsCache::Lookup(const Key& initiator, uint8_t ss[WG_KEY_SIZE], bool* ok) {
  auto it = index_.find(initiator);
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  std::memcpy(ss, it->second->ss.data(), WG_KEY_SIZE);
  *ok = it->second->ok;
  return true;
}

// Once full, the least recently used entry's list and map nodes carry the
// new entry: a flood of new keys allocates nothing.
void SsCache::Insert(const Key& initiator, const uint8_t ss[WG_KEY_SIZE], bool ok) {
  if (capacity_ == 0 || index_.count(initiator) != 0) return;
  if (lru_.size() < capacity_) {
    lru_.emplace_front();
    index_.emplace(initiator, lru_.begin());
  } else {
    lru_.splice(lru_.begin(), lru_, std::prev(lru_.end()));
    auto node = index_.extract(lru_.front().initiator);
    node.key() = initiator;
    index_.insert(std::move(node));
  }
  Entry& e = lru_.front();
  e.initiator = initiator;
  std::memcpy(e.ss.data(), ss, WG_KEY_SIZE);  // over the evicted secret
  e.ok = ok;
}

/* ---------- Noise symmetric state (paper §5.4) ---------- */

// C, H, k and the last DH result of one verify; wiped however verify ends.
struct NoiseState {
  Key ck;
  Key h;
  Key k{};
  Key dh{};
  NoiseState(const Key& ck0, const Key& h0) : ck(ck0), h(h0) {}
  ~NoiseState() { Wipe(this, sizeof *this); }
};

namespace {

void Kdf1(uint8_t t1[WG_KEY_SIZE], const uint8_t ck[WG_KEY_SIZE], const uint8_t* input, size_t size) {
  Key t0;
  Hmac(t0.data(), ck, {{input, size}});
  Hmac(t1, t0.data(), {{&kByte1, 1}});
  Wipe(t0.data(), t0.size());
}

void Kdf2(uint8_t t1[WG_KEY_SIZE], uint8_t t2[WG_KEY_SIZE], const uint8_t ck[WG_KEY_SIZE], const uint8_t* input, size_t size) {
  Key t0;
  Hmac(t0.data(), ck, {{input, size}});
  Hmac(t1, t0.data(), {{&kByte1, 1}});
  Hmac(t2, t0.data(), {{t1, WG_KEY_SIZE}, {&kByte2, 1}});
  Wipe(t0.data(), t0.size());
}

// H = HASH(H ‖ data)
void MixHash(NoiseState& s, const uint8_t* data, size_t size) {
  Hash(s.h.data(), {{s.h.data(), s.h.size()}, {data, size}});
}

// C = KDF1(C, input): for public inputs such as the ephemeral key.
void MixKey(NoiseState& s, const uint8_t* input, size_t size) {
  Kdf1(s.ck.data(), s.ck.data(), input, size);
}

// (C, k) = KDF2(C, dh): a DH result becomes the key for the next field.
void MixDh(NoiseState& s, const uint8_t dh[WG_KEY_SIZE]) {
  Kdf2(s.ck.data(), s.k.data(), s.ck.data(), dh, WG_KEY_SIZE);
}

// Open one field under k with H as associated data, then hash the ciphertext in.
bool DecryptAndHash(NoiseState& s, const uint8_t* sealed, size_t size, uint8_t* plain) {
  if (size < WG_AEAD_TAG_SIZE || size - WG_AEAD_TAG_SIZE > kMaxPlain) return false;
  if (!AeadDecrypt(s.k.data(), sealed, size, s.h.data(), plain)) return false;
  MixHash(s, sealed, size);
  return true;
}

}  // namespace

/* ---------- the responder ---------- */

NoiseResponder::NoiseResponder(const uint8_t private_key[WG_KEY_SIZE], size_t ss_cache_size) : ss_cache_(ss_cache_size) {
  NoiseCryptoInit();
  std::memcpy(private_key_.data(), private_key, WG_KEY_SIZE);
  X25519Public(public_key_.data(), private_key_.data());
  /* C₀ = HASH(construction); H₀ = HASH(HASH(C₀ ‖ identifier) ‖ S_pub); mac1 key = HASH("mac1----" ‖ S_pub) */
  Hash(ck0_.data(), {{kConstruction, sizeof kConstruction - 1}});
  Hash(h0_.data(), {{ck0_.data(), ck0_.size()}, {kIdentifier, sizeof kIdentifier - 1}});
  Hash(h0_.data(), {{h0_.data(), h0_.size()}, {public_key_.data(), public_key_.size()}});
  Hash(mac1_key_.data(), {{kLabelMac1, sizeof kLabelMac1 - 1}, {public_key_.data(), public_key_.size()}});
}

NoiseResponder::~NoiseResponder() { Wipe(private_key_.data(), private_key_.size()); }

bool NoiseResponder::Dh(const uint8_t peer[WG_KEY_SIZE], uint8_t shared[WG_KEY_SIZE]) const {
  return X25519(shared, private_key_.data(), peer);
}

bool NoiseResponder::Mac1Valid(const Message& msg) const {
  uint8_t expected[WG_MAC_SIZE];
  Mac(expected, mac1_key_.data(), msg.data(), WG_INITIATION_OFF_MAC1);
  return MacEqual(expected, msg.data() + WG_INITIATION_OFF_MAC1);
}

// ss for this initiator key: from the cache, else one DH (false: low order).
bool NoiseResponder::StaticStatic(const Key& initiator, uint8_t ss[WG_KEY_SIZE]) {
  bool ok = false;
  if (ss_cache_.Lookup(initiator, ss, &ok)) return ok;
  ok = Dh(initiator.data(), ss);
  ss_cache_.Insert(initiator, ss, ok);
  return ok;
}

Rejection NoiseResponder::Verify(const uint8_t* message, size_t size, Verified* out, ClaimedStatic* on_claimed) {
  if (size != WG_MSG_INITIATION_SIZE) return Rejection::kLength;
  if (message[WG_INITIATION_OFF_TYPE] != WG_MSG_TYPE_INITIATION) return Rejection::kType;
  if (!IsAllZero(message + WG_INITIATION_OFF_RESERVED, WG_RESERVED_SIZE)) return Rejection::kReserved;
  // A copy: on_claimed runs JavaScript, which could change or detach the caller's buffer.
  Message msg;
  std::memcpy(msg.data(), message, msg.size());
  if (!Mac1Valid(msg)) return Rejection::kMac1;
  NoiseState s(ck0_, h0_);  // its destructor is the one exit that wipes secrets
  return ConsumeInitiation(msg, s, out, on_claimed);
}

Rejection NoiseResponder::ConsumeInitiation(const Message& msg, NoiseState& s, Verified* out, ClaimedStatic* on_claimed) {
  const uint8_t* ephemeral = msg.data() + WG_INITIATION_OFF_EPHEMERAL;
  /* e */
  MixKey(s, ephemeral, WG_KEY_SIZE);
  MixHash(s, ephemeral, WG_KEY_SIZE);
  /* es */
  if (!Dh(ephemeral, s.dh.data())) return Rejection::kLowOrder;
  MixDh(s, s.dh.data());
  /* s */
  if (!DecryptAndHash(s, msg.data() + WG_INITIATION_OFF_STATIC, WG_ENCRYPTED_STATIC_SIZE, out->initiator_key.data())) return Rejection::kStaticDecrypt;
  if (on_claimed != nullptr) (*on_claimed)(out->initiator_key);
  /* ss */
  if (!StaticStatic(out->initiator_key, s.dh.data())) return Rejection::kLowOrder;
  MixDh(s, s.dh.data());
  /* {t} */
  if (!DecryptAndHash(s, msg.data() + WG_INITIATION_OFF_TIMESTAMP, WG_ENCRYPTED_TIMESTAMP_SIZE, out->timestamp.data())) return Rejection::kTimestampDecrypt;
  out->sender_index = LoadLe32(msg.data() + WG_INITIATION_OFF_SENDER);
  return Rejection::kNone;
}

/* ---------- N-API class ---------- */

namespace {

// verify()'s out argument: the timestamp, the little-endian sender index,
// then the initiator's key (written first for the claimed-key callback).
constexpr size_t kOutTimestamp = 0;
constexpr size_t kOutSenderIndex = kOutTimestamp + WG_TIMESTAMP_SIZE;
constexpr size_t kOutKey = kOutSenderIndex + WG_INDEX_SIZE;
constexpr size_t kOutSize = kOutKey + WG_KEY_SIZE;

// A Uint8Array argument of exactly `size` bytes (any size if 0), else a TypeError.
Napi::TypedArrayOf<uint8_t> BytesArg(const Napi::CallbackInfo& info, size_t i, size_t size, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array");
  auto bytes = v.As<Napi::TypedArrayOf<uint8_t>>();
  if (size != 0 && bytes.ByteLength() != size) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be " + std::to_string(size) + " bytes");
  return bytes;
}

// The claimed key goes to JavaScript as bytes, in verify()'s out buffer,
// and the callback reads it from there: no value made through N-API.
class CallJs final : public ClaimedStatic {
 public:
  CallJs(const Napi::CallbackInfo& info, Napi::Value fn) : info_(info), fn_(fn.IsFunction() ? fn.As<Napi::Function>() : Napi::Function()) {}
  void operator()(const Key& claimed) override {
    auto out = BytesArg(info_, 2, kOutSize, "out");
    std::memcpy(out.Data() + kOutKey, claimed.data(), claimed.size());
    fn_.Call({});
  }
  bool wanted() const { return !fn_.IsEmpty(); }

 private:
  const Napi::CallbackInfo& info_;
  Napi::Function fn_;
};

Napi::Array RejectionNames(Napi::Env env) {
  static const char* const names[] = {
#define NOISE_REJECTION_NAME(name, text) text,
      NOISE_REJECTIONS(NOISE_REJECTION_NAME)
#undef NOISE_REJECTION_NAME
  };
  Napi::Array out = Napi::Array::New(env, std::size(names));
  for (uint32_t i = 0; i < std::size(names); i++) out.Set(i, Napi::String::New(env, names[i]));
  return out;
}

// The index of r in RejectionNames(): the enum counts kNone first.
uint32_t RejectionIndex(Rejection r) { return static_cast<uint32_t>(r) - 1; }

}  // namespace

Napi::Function NoiseResponderWrap::Define(Napi::Env env) {
  return DefineClass(env, "NoiseResponder",
                     {InstanceAccessor<&NoiseResponderWrap::PublicKey>("publicKey"),
                      InstanceMethod<&NoiseResponderWrap::Verify>("verify"), InstanceMethod<&NoiseResponderWrap::Dh>("dh"),
                      InstanceMethod<&NoiseResponderWrap::Close>("close"),
                      StaticValue("rejections", RejectionNames(env), napi_enumerable)});
}

NoiseResponderWrap::NoiseResponderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NoiseResponderWrap>(info) {
  auto key = BytesArg(info, 0, WG_KEY_SIZE, "privateKey");
  if (!info[1].IsNumber() || info[1].As<Napi::Number>().DoubleValue() < 0) throw Napi::TypeError::New(info.Env(), "ssCacheSize must be a number >= 0");
  try {
    responder_ = std::make_shared<NoiseResponder>(key.Data(), size_t(info[1].As<Napi::Number>().Uint32Value()));
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

const std::shared_ptr<NoiseResponder>& NoiseResponderWrap::Responder(Napi::Env env) {
  if (!responder_) throw Napi::Error::New(env, "NoiseResponder is closed");
  return responder_;
}

Napi::Value NoiseResponderWrap::PublicKey(const Napi::CallbackInfo& info) {
  const Key& key = Responder(info.Env())->public_key();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), key.data(), key.size());
}

// The result crosses as null (verified: the key, timestamp and sender
// index are in `out`) or a number (a rejection), and the facade in
// native.ts builds the object: a JavaScript object literal costs far less
// than an object and a Uint8Array made through N-API.
Napi::Value NoiseResponderWrap::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Held for the call: the callback may close() this responder.
  std::shared_ptr<NoiseResponder> responder = Responder(env);
  auto message = BytesArg(info, 0, 0, "message");
  CallJs on_claimed(info, info[1]);
  Verified verified{};
  Rejection r;
  try {
    r = responder->Verify(message.Data(), message.ByteLength(), &verified, on_claimed.wanted() ? &on_claimed : nullptr);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
  if (r != Rejection::kNone) return Napi::Number::New(env, RejectionIndex(r));
  auto out = BytesArg(info, 2, kOutSize, "out");  // after the callback, which could have detached it
  std::memcpy(out.Data() + kOutTimestamp, verified.timestamp.data(), verified.timestamp.size());
  for (size_t i = 0; i < WG_INDEX_SIZE; i++) out[kOutSenderIndex + i] = uint8_t(verified.sender_index >> (8 * i));
  std::memcpy(out.Data() + kOutKey, verified.initiator_key.data(), verified.initiator_key.size());
  return env.Null();
}

Napi::Value NoiseResponderWrap::Dh(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto peer = BytesArg(info, 0, WG_KEY_SIZE, "peer");
  Key shared{};
  bool ok = Responder(env)->Dh(peer.Data(), shared.data());
  Napi::Value out = ok ? Napi::Buffer<uint8_t>::Copy(env, shared.data(), shared.size()) : env.Null();
  Wipe(shared.data(), shared.size());
  return out;
}

Napi::Value NoiseResponderWrap::Close(const Napi::CallbackInfo& info) {
  responder_.reset();
  return info.Env().Undefined();
}

}  // namespace wgjit
