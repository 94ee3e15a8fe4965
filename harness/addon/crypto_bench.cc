#include "crypto_bench.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <time.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "noise_crypto.h"

namespace wgjit {

namespace {

// Enough distinct peers that no backend can profit from seeing one twice.
constexpr size_t kPeers = 64;
constexpr uint8_t kByte1 = 1;
constexpr uint8_t kByte2 = 2;

template <typename T>
T* Need(T* p, const char* what) {
  if (p == nullptr) throw std::runtime_error(std::string("OpenSSL: ") + what);
  return p;
}

struct OpenSslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD* p) const { EVP_MD_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
  void operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
template <typename T>
using Ossl = std::unique_ptr<T, OpenSslFree>;

// Failed calls leave errors on OpenSSL's per-thread queue, which node:crypto
// shares: drop ours.
class ErrorMark {
 public:
  ErrorMark() { ERR_set_mark(); }
  ~ErrorMark() { ERR_pop_to_mark(); }
};

Key RandomKey() {
  Key k;
  randombytes_buf(k.data(), k.size());
  return k;
}

struct DhFixture {
  Key scalar = RandomKey();
  std::vector<Key> peers;
  DhFixture() {
    for (size_t i = 0; i < kPeers; i++) {
      Key secret = RandomKey();
      peers.emplace_back();
      X25519Public(peers.back().data(), secret.data());
    }
  }
  const uint8_t* peer(size_t i) const { return peers[i % kPeers].data(); }
};

// One X25519 backend: run(i, out) computes scalar × peer(i) into out.
using DhRun = std::function<bool(size_t i, uint8_t out[WG_KEY_SIZE])>;

DhRun OpenSslDh(std::shared_ptr<const DhFixture> f, bool reuse) {
  struct State {
    Ossl<EVP_PKEY> key;
    Ossl<EVP_PKEY_CTX> import;
    Ossl<EVP_PKEY_CTX> derive;
    Ossl<EVP_PKEY> peer;  // reuse: refilled per DH
  };
  auto s = std::make_shared<State>();
  s->key.reset(Need(EVP_PKEY_new_raw_private_key_ex(nullptr, "X25519", nullptr, f->scalar.data(), WG_KEY_SIZE), "X25519 key"));
  s->import.reset(Need(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr), "X25519 import"));
  s->derive.reset(Need(EVP_PKEY_CTX_new_from_pkey(nullptr, s->key.get(), nullptr), "X25519 derive"));
  s->peer.reset(Need(EVP_PKEY_new_raw_public_key_ex(nullptr, "X25519", nullptr, f->peer(0), WG_KEY_SIZE), "X25519 peer"));
  if (EVP_PKEY_fromdata_init(s->import.get()) != 1 || EVP_PKEY_derive_init(s->derive.get()) != 1) throw std::runtime_error("OpenSSL: X25519 init");
  return [s, f, reuse](size_t i, uint8_t out[WG_KEY_SIZE]) {
    Ossl<EVP_PKEY> imported;
    EVP_PKEY* peer = s->peer.get();
    if (reuse) {
      if (EVP_PKEY_set1_encoded_public_key(peer, f->peer(i), WG_KEY_SIZE) != 1) return false;
    } else {
      OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(f->peer(i)), WG_KEY_SIZE),
                             OSSL_PARAM_construct_end()};
      EVP_PKEY* raw = nullptr;
      if (EVP_PKEY_fromdata(s->import.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) return false;
      imported.reset(raw);
      peer = raw;
    }
    size_t len = WG_KEY_SIZE;
    return EVP_PKEY_derive_set_peer_ex(s->derive.get(), peer, 0) == 1 && EVP_PKEY_derive(s->derive.get(), out, &len) == 1 && len == WG_KEY_SIZE;
  };
}

/* ---------- the symmetric work of one initiation ---------- */

// The responder's primitives (noise_crypto.h).
struct SodiumB2 {
  void Hash(uint8_t out[WG_KEY_SIZE], std::initializer_list<Bytes> parts) { wgjit::Hash(out, parts); }
  void Hmac(uint8_t out[WG_KEY_SIZE], const uint8_t key[WG_KEY_SIZE], std::initializer_list<Bytes> parts) { wgjit::Hmac(out, key, parts); }
  void Mac(uint8_t out[WG_MAC_SIZE], const uint8_t key[WG_KEY_SIZE], const uint8_t* data, size_t size) { wgjit::Mac(out, key, data, size); }
  bool AeadDecrypt(const uint8_t key[WG_KEY_SIZE], const uint8_t* sealed, size_t size, const uint8_t ad[WG_KEY_SIZE], uint8_t* plain) {
    return wgjit::AeadDecrypt(key, sealed, size, ad, plain);
  }
};

// The same on node's OpenSSL EVP, contexts made once, as the responder had them.
class OpenSslSymmetric {
 public:
  OpenSslSymmetric() {
    blake2s_.reset(Need(EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr), "BLAKE2S-256"));
    hash_ctx_.reset(Need(EVP_MD_CTX_new(), "EVP_MD_CTX_new"));
    hmac_.reset(Need(EVP_MAC_fetch(nullptr, "HMAC", nullptr), "HMAC"));
    hmac_ctx_.reset(Need(EVP_MAC_CTX_new(hmac_.get()), "EVP_MAC_CTX_new"));
    char digest[] = "BLAKE2S-256";
    const OSSL_PARAM hmac_params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(hmac_ctx_.get(), hmac_params) != 1) throw std::runtime_error("OpenSSL: HMAC digest");
    blake2s_mac_.reset(Need(EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr), "BLAKE2SMAC"));
    mac_ctx_.reset(Need(EVP_MAC_CTX_new(blake2s_mac_.get()), "EVP_MAC_CTX_new"));
    aead_.reset(Need(EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr), "ChaCha20-Poly1305"));
    aead_ctx_.reset(Need(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new"));
    if (EVP_DecryptInit_ex2(aead_ctx_.get(), aead_.get(), nullptr, nullptr, nullptr) != 1) throw std::runtime_error("OpenSSL: AEAD init");
  }
  void Hash(uint8_t out[WG_KEY_SIZE], std::initializer_list<Bytes> parts) {
    bool ok = EVP_DigestInit_ex2(hash_ctx_.get(), blake2s_.get(), nullptr) == 1;
    for (const Bytes& p : parts) ok = ok && EVP_DigestUpdate(hash_ctx_.get(), p.data, p.size) == 1;
    unsigned int len = 0;
    if (!(ok && EVP_DigestFinal_ex(hash_ctx_.get(), out, &len) == 1)) throw std::runtime_error("OpenSSL: BLAKE2s");
  }
  void Hmac(uint8_t out[WG_KEY_SIZE], const uint8_t key[WG_KEY_SIZE], std::initializer_list<Bytes> parts) {
    bool ok = EVP_MAC_init(hmac_ctx_.get(), key, WG_KEY_SIZE, nullptr) == 1;
    for (const Bytes& p : parts) ok = ok && EVP_MAC_update(hmac_ctx_.get(), static_cast<const uint8_t*>(p.data), p.size) == 1;
    size_t len = 0;
    if (!(ok && EVP_MAC_final(hmac_ctx_.get(), out, &len, WG_KEY_SIZE) == 1)) throw std::runtime_error("OpenSSL: HMAC");
  }
  void Mac(uint8_t out[WG_MAC_SIZE], const uint8_t key[WG_KEY_SIZE], const uint8_t* data, size_t size) {
    size_t mac_size = WG_MAC_SIZE, len = 0;
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &mac_size), OSSL_PARAM_construct_end()};
    if (!(EVP_MAC_init(mac_ctx_.get(), key, WG_KEY_SIZE, params) == 1 && EVP_MAC_update(mac_ctx_.get(), data, size) == 1 &&
          EVP_MAC_final(mac_ctx_.get(), out, &len, WG_MAC_SIZE) == 1))
      throw std::runtime_error("OpenSSL: keyed BLAKE2s");
  }
  bool AeadDecrypt(const uint8_t key[WG_KEY_SIZE], const uint8_t* sealed, size_t size, const uint8_t ad[WG_KEY_SIZE], uint8_t* plain) {
    EVP_CIPHER_CTX* ctx = aead_ctx_.get();
    const int body = int(size - WG_AEAD_TAG_SIZE);
    int len = 0;
    return EVP_DecryptInit_ex2(ctx, nullptr, key, kHandshakeNonce, nullptr) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, WG_AEAD_TAG_SIZE, const_cast<uint8_t*>(sealed + body)) == 1 &&
           EVP_DecryptUpdate(ctx, nullptr, &len, ad, WG_KEY_SIZE) == 1 && EVP_DecryptUpdate(ctx, plain, &len, sealed, body) == 1 &&
           EVP_DecryptFinal_ex(ctx, plain + len, &len) == 1;
  }

 private:
  Ossl<EVP_MD> blake2s_;
  Ossl<EVP_MD_CTX> hash_ctx_;
  Ossl<EVP_MAC> hmac_;
  Ossl<EVP_MAC_CTX> hmac_ctx_;
  Ossl<EVP_MAC> blake2s_mac_;
  Ossl<EVP_MAC_CTX> mac_ctx_;
  Ossl<EVP_CIPHER> aead_;
  Ossl<EVP_CIPHER_CTX> aead_ctx_;
};

// Inputs of the sizes an initiation has; the two sealed fields open under
// `key` with `ad`, so every AEAD open runs to the end.
struct SymmetricFixture {
  uint8_t message[WG_MSG_INITIATION_SIZE];
  Key key = RandomKey(), ad = RandomKey(), dh = RandomKey();
  uint8_t sealed_static[WG_ENCRYPTED_STATIC_SIZE];
  uint8_t sealed_timestamp[WG_ENCRYPTED_TIMESTAMP_SIZE];
  SymmetricFixture() {
    randombytes_buf(message, sizeof message);
    Seal(sealed_static, sizeof sealed_static);
    Seal(sealed_timestamp, sizeof sealed_timestamp);
  }
  void Seal(uint8_t* sealed, size_t size) {
    const size_t body = size - WG_AEAD_TAG_SIZE;
    randombytes_buf(sealed, body);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(sealed, sealed + body, nullptr, sealed, body, ad.data(), ad.size(), nullptr, kHandshakeNonce, key.data());
  }
};

// The responder's hashing and AEAD for one initiation, in its order and
// sizes. C and H carry from one call to the next so nothing can be hoisted
// out of the loop; returns false if an AEAD open fails.
template <typename P>
bool OneInitiation(P& p, const SymmetricFixture& f, Key& ck, Key& h) {
  uint8_t mac[WG_MAC_SIZE], plain[WG_KEY_SIZE];
  Key t0, k;
  const uint8_t* e = f.message + WG_INITIATION_OFF_EPHEMERAL;
  p.Mac(mac, ck.data(), f.message, WG_INITIATION_OFF_MAC1);
  /* e */
  p.Hmac(t0.data(), ck.data(), {{e, WG_KEY_SIZE}});
  p.Hmac(ck.data(), t0.data(), {{&kByte1, 1}});
  p.Hash(h.data(), {{h.data(), h.size()}, {e, WG_KEY_SIZE}});
  for (const uint8_t* sealed : {f.sealed_static, f.sealed_timestamp}) {
    const size_t size = sealed == f.sealed_static ? sizeof f.sealed_static : sizeof f.sealed_timestamp;
    /* es, ss */
    p.Hmac(t0.data(), ck.data(), {{f.dh.data(), f.dh.size()}});
    p.Hmac(ck.data(), t0.data(), {{&kByte1, 1}});
    p.Hmac(k.data(), t0.data(), {{ck.data(), ck.size()}, {&kByte2, 1}});
    /* s, {t} */
    if (!p.AeadDecrypt(f.key.data(), sealed, size, f.ad.data(), plain)) return false;
    p.Hash(h.data(), {{h.data(), h.size()}, {sealed, size}});
  }
  h[0] ^= mac[0] ^ k[0];
  return true;
}

template <typename P>
std::function<bool()> SymmetricRun(std::shared_ptr<P> p) {
  auto f = std::make_shared<SymmetricFixture>();
  auto state = std::make_shared<std::pair<Key, Key>>();
  // Both backends must end on the same bytes from the same start.
  SodiumB2 reference;
  Key ck_ref{}, h_ref{}, ck{}, h{};
  for (int i = 0; i < 3; i++) {
    if (!OneInitiation(reference, *f, ck_ref, h_ref) || !OneInitiation(*p, *f, ck, h)) throw std::runtime_error("AEAD open failed");
  }
  if (ck != ck_ref || h != h_ref) throw std::runtime_error("backends disagree on the symmetric work");
  return [p, f, state] { return OneInitiation(*p, *f, state->first, state->second); };
}

// This thread's CPU time: on a shared machine, time another process had the
// core is not charged to the operation.
double ThreadCpuNs() {
  timespec t;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) throw std::runtime_error("clock_gettime failed");
  return double(t.tv_sec) * 1e9 + double(t.tv_nsec);
}

double NsPerOp(const std::function<bool()>& op, uint32_t iterations) {
  const double start = ThreadCpuNs();
  for (uint32_t i = 0; i < iterations; i++) {
    if (!op()) throw std::runtime_error("operation failed");
  }
  return (ThreadCpuNs() - start) / iterations;
}

std::function<bool()> DhOp(std::shared_ptr<const DhFixture> f, DhRun run) {
  // Same results as the responder's X25519 on every peer, first.
  for (size_t i = 0; i < kPeers; i++) {
    Key expected, got;
    if (!X25519(expected.data(), f->scalar.data(), f->peer(i)) || !run(i, got.data()) || got != expected) throw std::runtime_error("X25519 backends disagree");
  }
  auto next = std::make_shared<size_t>(0);
  return [run, next] {
    Key shared;
    return run((*next)++, shared.data());
  };
}

std::function<bool()> MakeOp(const std::string& name) {
  auto f = std::make_shared<const DhFixture>();
  if (name == "x25519:libsodium") return DhOp(f, [f](size_t i, uint8_t out[WG_KEY_SIZE]) { return X25519(out, f->scalar.data(), f->peer(i)); });
  if (name == "x25519:openssl-import") return DhOp(f, OpenSslDh(f, false));
  if (name == "x25519:openssl-reuse") return DhOp(f, OpenSslDh(f, true));
  if (name == "symmetric:libb2+libsodium") return SymmetricRun(std::make_shared<SodiumB2>());
  if (name == "symmetric:openssl") return SymmetricRun(std::make_shared<OpenSslSymmetric>());
  throw std::runtime_error("unknown op");
}

}  // namespace

Napi::Value BenchCrypto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "benchCrypto(op: string, iterations: number)");
  const std::string name = info[0].As<Napi::String>();
  const int64_t iterations = info[1].As<Napi::Number>().Int64Value();
  if (iterations < 1 || iterations > UINT32_MAX) throw Napi::RangeError::New(env, "iterations must be in 1..2^32-1");
  try {
    NoiseCryptoInit();
    ErrorMark mark;
    return Napi::Number::New(env, NsPerOp(MakeOp(name), uint32_t(iterations)));
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, name + ": " + e.what());
  }
}

}  // namespace wgjit
