#include "noise_responder.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace wgjit {

namespace {

constexpr char kConstruction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
constexpr char kIdentifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
constexpr char kLabelMac1[] = "mac1----";
constexpr uint8_t kByte1 = 1;
constexpr uint8_t kByte2 = 2;
// Every handshake field is sealed under its own key, so the counter is 0.
constexpr uint64_t kHandshakeCounter = 0;
// Nonce = 4 zero bytes ‖ 64-bit little-endian counter.
constexpr size_t kNonceSize = 12;
constexpr size_t kNonceCounterOffset = 4;
// Buffer reserved for ChaCha20-Poly1305's longest handshake plaintext.
constexpr size_t kMaxPlain = WG_KEY_SIZE;

std::runtime_error OpenSslError(const char* what) {
  ERR_clear_error();
  return std::runtime_error(std::string("OpenSSL: ") + what);
}

template <typename T>
T* Need(T* p, const char* what) {
  if (p == nullptr) throw OpenSslError(what);
  return p;
}

bool IsAllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

std::array<uint8_t, kNonceSize> HandshakeNonce() {
  std::array<uint8_t, kNonceSize> n{};
  for (size_t i = 0; i < sizeof kHandshakeCounter; i++) n[kNonceCounterOffset + i] = uint8_t(kHandshakeCounter >> (8 * i));
  return n;
}

// Failed DHs and AEAD opens leave errors on OpenSSL's per-thread queue, which
// node:crypto shares: drop ours so they never surface in an unrelated call.
class ErrorMark {
 public:
  ErrorMark() { ERR_set_mark(); }
  ~ErrorMark() { ERR_pop_to_mark(); }
};

}  // namespace

const char* RejectionName(Rejection r) {
  switch (r) {
#define NOISE_REJECTION_CASE(name, text) \
  case Rejection::name:                  \
    return text;
    NOISE_REJECTIONS(NOISE_REJECTION_CASE)
#undef NOISE_REJECTION_CASE
    case Rejection::kNone:
      break;
  }
  return "none";
}

/* ---------- OpenSSL handles ---------- */

void OpenSslDeleter::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
void OpenSslDeleter::operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
void OpenSslDeleter::operator()(EVP_MD* p) const { EVP_MD_free(p); }
void OpenSslDeleter::operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
void OpenSslDeleter::operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
void OpenSslDeleter::operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
void OpenSslDeleter::operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
void OpenSslDeleter::operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }

/* ---------- ss cache ---------- */

SsCache::~SsCache() {
  for (Entry& e : lru_) OPENSSL_cleanse(e.ss.data(), e.ss.size());
}

bool SsCache::Lookup(const Key& initiator, uint8_t ss[WG_KEY_SIZE], bool* ok) {
  auto it = index_.find(initiator);
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  std::memcpy(ss, it->second->ss.data(), WG_KEY_SIZE);
  *ok = it->second->ok;
  return true;
}

void SsCache::Insert(const Key& initiator, const uint8_t ss[WG_KEY_SIZE], bool ok) {
  if (capacity_ == 0 || index_.count(initiator) != 0) return;
  lru_.push_front(Entry{initiator, {}, ok});
  std::memcpy(lru_.front().ss.data(), ss, WG_KEY_SIZE);
  index_.emplace(initiator, lru_.begin());
  if (lru_.size() <= capacity_) return;
  Entry& oldest = lru_.back();
  OPENSSL_cleanse(oldest.ss.data(), oldest.ss.size());
  index_.erase(oldest.initiator);
  lru_.pop_back();
}

/* ---------- primitives: BLAKE2s, HMAC-BLAKE2s, keyed BLAKE2s, AEAD, X25519 ---------- */

void NoiseResponder::Hash(uint8_t out[WG_KEY_SIZE], std::initializer_list<Bytes> parts) {
  EVP_MD_CTX* ctx = hash_ctx_.get();
  bool ok = EVP_DigestInit_ex2(ctx, blake2s_.get(), nullptr) == 1;
  for (const Bytes& p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data, p.size) == 1;
  unsigned int len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == WG_KEY_SIZE;
  if (!ok) throw OpenSslError("BLAKE2s");
}

void NoiseResponder::Hmac(uint8_t out[WG_KEY_SIZE], const uint8_t key[WG_KEY_SIZE], std::initializer_list<Bytes> parts) {
  EVP_MAC_CTX* ctx = hmac_ctx_.get();
  bool ok = EVP_MAC_init(ctx, key, WG_KEY_SIZE, nullptr) == 1;
  for (const Bytes& p : parts) ok = ok && EVP_MAC_update(ctx, static_cast<const uint8_t*>(p.data), p.size) == 1;
  size_t len = 0;
  ok = ok && EVP_MAC_final(ctx, out, &len, WG_KEY_SIZE) == 1 && len == WG_KEY_SIZE;
  if (!ok) throw OpenSslError("HMAC-BLAKE2s");
}

void NoiseResponder::Mac(uint8_t out[WG_MAC_SIZE], const uint8_t* data, size_t size) {
  EVP_MAC_CTX* ctx = mac_ctx_.get();
  size_t mac_size = WG_MAC_SIZE;
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &mac_size), OSSL_PARAM_construct_end()};
  size_t len = 0;
  bool ok = EVP_MAC_init(ctx, mac1_key_.data(), mac1_key_.size(), params) == 1 && EVP_MAC_update(ctx, data, size) == 1 &&
            EVP_MAC_final(ctx, out, &len, WG_MAC_SIZE) == 1 && len == WG_MAC_SIZE;
  if (!ok) throw OpenSslError("keyed BLAKE2s");
}

// ChaCha20-Poly1305 open of ciphertext ‖ tag; plain gets size - tag bytes.
bool NoiseResponder::AeadDecrypt(const uint8_t key[WG_KEY_SIZE], const uint8_t* sealed, size_t size, const uint8_t ad[WG_KEY_SIZE], uint8_t* plain) {
  static const std::array<uint8_t, kNonceSize> nonce = HandshakeNonce();
  EVP_CIPHER_CTX* ctx = aead_ctx_.get();
  const int body = int(size - WG_AEAD_TAG_SIZE);
  int len = 0;
  return EVP_DecryptInit_ex2(ctx, nullptr, key, nonce.data(), nullptr) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, WG_AEAD_TAG_SIZE, const_cast<uint8_t*>(sealed + body)) == 1 &&
         EVP_DecryptUpdate(ctx, nullptr, &len, ad, WG_KEY_SIZE) == 1 && EVP_DecryptUpdate(ctx, plain, &len, sealed, body) == 1 &&
         EVP_DecryptFinal_ex(ctx, plain + len, &len) == 1;
}

bool NoiseResponder::Dh(const uint8_t peer[WG_KEY_SIZE], uint8_t shared[WG_KEY_SIZE]) {
  // fromdata on a context made once: EVP_PKEY_new_raw_public_key looks X25519 up by name each time.
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(peer), WG_KEY_SIZE),
                         OSSL_PARAM_construct_end()};
  EVP_PKEY* raw_peer = nullptr;
  if (EVP_PKEY_fromdata(import_ctx_.get(), &raw_peer, EVP_PKEY_PUBLIC_KEY, params) != 1) return false;
  OsslPtr<EVP_PKEY> peer_key(raw_peer);
  size_t len = WG_KEY_SIZE;
  // OpenSSL refuses an all-zero result (a low-order point); the check below is belt and braces.
  bool ok = EVP_PKEY_derive_set_peer_ex(derive_ctx_.get(), peer_key.get(), 0) == 1 &&
            EVP_PKEY_derive(derive_ctx_.get(), shared, &len) == 1 && len == WG_KEY_SIZE;
  return ok && !IsAllZero(shared, WG_KEY_SIZE);
}

/* ---------- Noise symmetric state (paper §5.4) ---------- */

// C, H, k and the last DH result of one verify; wiped however verify ends.
struct NoiseResponder::State {
  Key ck;
  Key h;
  Key k{};
  Key dh{};
  State(const Key& ck0, const Key& h0) : ck(ck0), h(h0) {}
  ~State() { OPENSSL_cleanse(this, sizeof *this); }
};

void NoiseResponder::Kdf1(uint8_t t1[WG_KEY_SIZE], const uint8_t ck[WG_KEY_SIZE], const uint8_t* input, size_t size) {
  Key t0;
  Hmac(t0.data(), ck, {{input, size}});
  Hmac(t1, t0.data(), {{&kByte1, 1}});
  OPENSSL_cleanse(t0.data(), t0.size());
}

void NoiseResponder::Kdf2(uint8_t t1[WG_KEY_SIZE], uint8_t t2[WG_KEY_SIZE], const uint8_t ck[WG_KEY_SIZE], const uint8_t* input, size_t size) {
  Key t0;
  Hmac(t0.data(), ck, {{input, size}});
  Hmac(t1, t0.data(), {{&kByte1, 1}});
  Hmac(t2, t0.data(), {{t1, WG_KEY_SIZE}, {&kByte2, 1}});
  OPENSSL_cleanse(t0.data(), t0.size());
}

// H = HASH(H ‖ data)
void NoiseResponder::MixHash(State& s, const uint8_t* data, size_t size) {
  Hash(s.h.data(), {{s.h.data(), s.h.size()}, {data, size}});
}

// C = KDF1(C, input): for public inputs such as the ephemeral key.
void NoiseResponder::MixKey(State& s, const uint8_t* input, size_t size) {
  Kdf1(s.ck.data(), s.ck.data(), input, size);
}

// (C, k) = KDF2(C, dh): a DH result becomes the key for the next field.
void NoiseResponder::MixDh(State& s, const uint8_t dh[WG_KEY_SIZE]) {
  Kdf2(s.ck.data(), s.k.data(), s.ck.data(), dh, WG_KEY_SIZE);
}

// Open one field under k with H as associated data, then hash the ciphertext in.
bool NoiseResponder::DecryptAndHash(State& s, const uint8_t* sealed, size_t size, uint8_t* plain) {
  if (size < WG_AEAD_TAG_SIZE || size - WG_AEAD_TAG_SIZE > kMaxPlain) return false;
  if (!AeadDecrypt(s.k.data(), sealed, size, s.h.data(), plain)) return false;
  MixHash(s, sealed, size);
  return true;
}

/* ---------- the responder ---------- */

NoiseResponder::NoiseResponder(const uint8_t private_key[WG_KEY_SIZE], size_t ss_cache_size) : ss_cache_(ss_cache_size) {
  blake2s_.reset(Need(EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr), "no BLAKE2S-256"));
  hash_ctx_.reset(Need(EVP_MD_CTX_new(), "EVP_MD_CTX_new"));
  hmac_.reset(Need(EVP_MAC_fetch(nullptr, "HMAC", nullptr), "no HMAC"));
  hmac_ctx_.reset(Need(EVP_MAC_CTX_new(hmac_.get()), "EVP_MAC_CTX_new"));
  char digest[] = "BLAKE2S-256";
  const OSSL_PARAM hmac_params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hmac_ctx_.get(), hmac_params) != 1) throw OpenSslError("HMAC digest");
  blake2s_mac_.reset(Need(EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr), "no BLAKE2SMAC"));
  mac_ctx_.reset(Need(EVP_MAC_CTX_new(blake2s_mac_.get()), "EVP_MAC_CTX_new"));
  aead_.reset(Need(EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr), "no ChaCha20-Poly1305"));
  aead_ctx_.reset(Need(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new"));
  if (EVP_DecryptInit_ex2(aead_ctx_.get(), aead_.get(), nullptr, nullptr, nullptr) != 1) throw OpenSslError("AEAD init");
  private_key_.reset(Need(EVP_PKEY_new_raw_private_key_ex(nullptr, "X25519", nullptr, private_key, WG_KEY_SIZE), "X25519 private key"));
  import_ctx_.reset(Need(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr), "X25519 key import"));
  if (EVP_PKEY_fromdata_init(import_ctx_.get()) != 1) throw OpenSslError("X25519 key import");
  derive_ctx_.reset(Need(EVP_PKEY_CTX_new_from_pkey(nullptr, private_key_.get(), nullptr), "EVP_PKEY_CTX_new"));
  if (EVP_PKEY_derive_init(derive_ctx_.get()) != 1) throw OpenSslError("X25519 derive init");
  size_t len = public_key_.size();
  if (EVP_PKEY_get_raw_public_key(private_key_.get(), public_key_.data(), &len) != 1 || len != WG_KEY_SIZE) throw OpenSslError("X25519 public key");
  /* C₀ = HASH(construction); H₀ = HASH(HASH(C₀ ‖ identifier) ‖ S_pub); mac1 key = HASH("mac1----" ‖ S_pub) */
  Hash(ck0_.data(), {{kConstruction, sizeof kConstruction - 1}});
  Hash(h0_.data(), {{ck0_.data(), ck0_.size()}, {kIdentifier, sizeof kIdentifier - 1}});
  Hash(h0_.data(), {{h0_.data(), h0_.size()}, {public_key_.data(), public_key_.size()}});
  Hash(mac1_key_.data(), {{kLabelMac1, sizeof kLabelMac1 - 1}, {public_key_.data(), public_key_.size()}});
}

bool NoiseResponder::Mac1Valid(const Message& msg) {
  uint8_t expected[WG_MAC_SIZE];
  Mac(expected, msg.data(), WG_INITIATION_OFF_MAC1);
  return CRYPTO_memcmp(expected, msg.data() + WG_INITIATION_OFF_MAC1, WG_MAC_SIZE) == 0;
}

// ss for this initiator key: from the cache, else one DH (false: low order).
bool NoiseResponder::StaticStatic(const Key& initiator, uint8_t ss[WG_KEY_SIZE]) {
  bool ok = false;
  if (ss_cache_.Lookup(initiator, ss, &ok)) return ok;
  ok = Dh(initiator.data(), ss);
  ss_cache_.Insert(initiator, ss, ok);
  return ok;
}

Rejection NoiseResponder::Verify(const uint8_t* message, size_t size, Verified* out, const ClaimedStatic& on_claimed) {
  if (size != WG_MSG_INITIATION_SIZE) return Rejection::kLength;
  if (message[WG_INITIATION_OFF_TYPE] != WG_MSG_TYPE_INITIATION) return Rejection::kType;
  if (!IsAllZero(message + WG_INITIATION_OFF_RESERVED, WG_RESERVED_SIZE)) return Rejection::kReserved;
  // A copy: on_claimed runs JavaScript, which could change or detach the caller's buffer.
  Message msg;
  std::memcpy(msg.data(), message, msg.size());
  ErrorMark mark;
  if (!Mac1Valid(msg)) return Rejection::kMac1;
  State s(ck0_, h0_);  // its destructor is the one exit that wipes secrets
  return ConsumeInitiation(msg, s, out, on_claimed);
}

Rejection NoiseResponder::ConsumeInitiation(const Message& msg, State& s, Verified* out, const ClaimedStatic& on_claimed) {
  const uint8_t* ephemeral = msg.data() + WG_INITIATION_OFF_EPHEMERAL;
  /* e */
  MixKey(s, ephemeral, WG_KEY_SIZE);
  MixHash(s, ephemeral, WG_KEY_SIZE);
  /* es */
  if (!Dh(ephemeral, s.dh.data())) return Rejection::kLowOrder;
  MixDh(s, s.dh.data());
  /* s */
  if (!DecryptAndHash(s, msg.data() + WG_INITIATION_OFF_STATIC, WG_ENCRYPTED_STATIC_SIZE, out->initiator_key.data())) return Rejection::kStaticDecrypt;
  if (on_claimed) on_claimed(out->initiator_key);
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

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Keys reach JavaScript as standard padded base64, like formatKey() in keys.ts.
Napi::String Base64Key(Napi::Env env, const Key& key) {
  char out[(WG_KEY_SIZE + 2) / 3 * 4];
  size_t o = 0;
  for (size_t i = 0; i < key.size(); i += 3) {
    uint32_t v = uint32_t(key[i]) << 16 | (i + 1 < key.size() ? uint32_t(key[i + 1]) << 8 : 0) | (i + 2 < key.size() ? key[i + 2] : 0);
    out[o++] = kBase64[v >> 18 & 63];
    out[o++] = kBase64[v >> 12 & 63];
    out[o++] = i + 1 < key.size() ? kBase64[v >> 6 & 63] : '=';
    out[o++] = i + 2 < key.size() ? kBase64[v & 63] : '=';
  }
  return Napi::String::New(env, out, o);
}

// A Uint8Array argument of exactly `size` bytes (any size if 0), else a TypeError.
Napi::TypedArrayOf<uint8_t> BytesArg(const Napi::CallbackInfo& info, size_t i, size_t size, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array");
  auto bytes = v.As<Napi::TypedArrayOf<uint8_t>>();
  if (size != 0 && bytes.ByteLength() != size) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be " + std::to_string(size) + " bytes");
  return bytes;
}

Napi::Object Rejected(Napi::Env env, Rejection r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", false);
  out.Set("reason", RejectionName(r));
  return out;
}

Napi::Object Accepted(Napi::Env env, const Verified& v) {
  Napi::Object out = Napi::Object::New(env);
  auto timestamp = Napi::Uint8Array::New(env, v.timestamp.size());
  std::memcpy(timestamp.Data(), v.timestamp.data(), v.timestamp.size());
  out.Set("ok", true);
  out.Set("initiatorKey", Base64Key(env, v.initiator_key));
  out.Set("timestamp", timestamp);
  out.Set("senderIndex", Napi::Number::New(env, v.sender_index));
  return out;
}

}  // namespace

Napi::Function NoiseResponderWrap::Define(Napi::Env env) {
  return DefineClass(env, "NoiseResponder",
                     {InstanceAccessor<&NoiseResponderWrap::PublicKey>("publicKey"),
                      InstanceMethod<&NoiseResponderWrap::Verify>("verify"), InstanceMethod<&NoiseResponderWrap::Dh>("dh"),
                      InstanceMethod<&NoiseResponderWrap::Close>("close")});
}

NoiseResponderWrap::NoiseResponderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NoiseResponderWrap>(info) {
  auto key = BytesArg(info, 0, WG_KEY_SIZE, "privateKey");
  if (!info[1].IsNumber() || info[1].As<Napi::Number>().DoubleValue() < 0) throw Napi::TypeError::New(info.Env(), "ssCacheSize must be a number >= 0");
  try {
    responder_ = std::make_unique<NoiseResponder>(key.Data(), size_t(info[1].As<Napi::Number>().Uint32Value()));
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

NoiseResponder& NoiseResponderWrap::Responder(Napi::Env env) {
  if (!responder_) throw Napi::Error::New(env, "NoiseResponder is closed");
  return *responder_;
}

Napi::Value NoiseResponderWrap::PublicKey(const Napi::CallbackInfo& info) {
  const Key& key = Responder(info.Env()).public_key();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), key.data(), key.size());
}

Napi::Value NoiseResponderWrap::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NoiseResponder& responder = Responder(env);
  auto message = BytesArg(info, 0, 0, "message");
  NoiseResponder::ClaimedStatic on_claimed;
  if (info[1].IsFunction()) {
    Napi::Function fn = info[1].As<Napi::Function>();
    on_claimed = [env, fn](const Key& key) { fn.Call({Base64Key(env, key)}); };
  }
  Verified verified{};
  try {
    Rejection r = responder.Verify(message.Data(), message.ByteLength(), &verified, on_claimed);
    return r == Rejection::kNone ? Accepted(env, verified) : Rejected(env, r);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value NoiseResponderWrap::Dh(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NoiseResponder& responder = Responder(env);
  auto peer = BytesArg(info, 0, WG_KEY_SIZE, "peer");
  Key shared{};
  bool ok;
  {
    ErrorMark mark;
    ok = responder.Dh(peer.Data(), shared.data());
  }
  Napi::Value out = ok ? Napi::Buffer<uint8_t>::Copy(env, shared.data(), shared.size()) : env.Null();
  OPENSSL_cleanse(shared.data(), shared.size());
  return out;
}

Napi::Value NoiseResponderWrap::Close(const Napi::CallbackInfo& info) {
  responder_.reset();
  return info.Env().Undefined();
}

}  // namespace wgjit
