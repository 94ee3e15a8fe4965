#include "noise_crypto.h"

#include <blake2.h>
#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace wgjit {

namespace {

// HMAC's inner and outer pads (RFC 2104), one BLAKE2s block long.
constexpr uint8_t kHmacInnerPad = 0x36;
constexpr uint8_t kHmacOuterPad = 0x5c;

static_assert(crypto_scalarmult_BYTES == WG_KEY_SIZE && crypto_scalarmult_SCALARBYTES == WG_KEY_SIZE, "X25519 sizes");
static_assert(crypto_aead_chacha20poly1305_IETF_ABYTES == WG_AEAD_TAG_SIZE, "AEAD tag size");
static_assert(sizeof kHandshakeNonce == crypto_aead_chacha20poly1305_IETF_NPUBBYTES, "AEAD nonce size");
static_assert(crypto_aead_chacha20poly1305_IETF_KEYBYTES == WG_KEY_SIZE, "AEAD key size");
static_assert(BLAKE2S_OUTBYTES == WG_KEY_SIZE && WG_KEY_SIZE <= BLAKE2S_BLOCKBYTES, "BLAKE2s sizes");

// libb2 fails only on sizes it does not support, and ours are constants.
void Blake2sCheck(int rc) {
  if (rc != 0) throw std::runtime_error("libb2: BLAKE2s failed");
}

void Blake2sUpdate(blake2s_state* st, std::initializer_list<Bytes> parts) {
  for (const Bytes& p : parts) Blake2sCheck(blake2s_update(st, static_cast<const uint8_t*>(p.data), p.size));
}

}  // namespace

void NoiseCryptoInit() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium: sodium_init failed");
}

bool X25519(uint8_t shared[WG_KEY_SIZE], const uint8_t scalar[WG_KEY_SIZE], const uint8_t point[WG_KEY_SIZE]) {
  // libsodium refuses an all-zero result, as OpenSSL and noble do for the
  // TypeScript responder; the check after it is belt and braces.
  return crypto_scalarmult(shared, scalar, point) == 0 && !IsAllZero(shared, WG_KEY_SIZE);
}

void X25519Public(uint8_t public_key[WG_KEY_SIZE], const uint8_t scalar[WG_KEY_SIZE]) {
  // Fails only for an all-zero result, which a clamped scalar never gives.
  if (crypto_scalarmult_base(public_key, scalar) != 0) throw std::runtime_error("libsodium: X25519 public key");
}

void Hash(uint8_t out[WG_KEY_SIZE], std::initializer_list<Bytes> parts) {
  blake2s_state st;
  Blake2sCheck(blake2s_init(&st, WG_KEY_SIZE));
  Blake2sUpdate(&st, parts);
  Blake2sCheck(blake2s_final(&st, out, WG_KEY_SIZE));
}

// libb2 has only BLAKE2s' own keyed mode, and Noise's HKDF needs HMAC: built
// here on BLAKE2s' 64-byte block. Its keys are chaining keys, so the pads
// and hash states are wiped.
void Hmac(uint8_t out[WG_KEY_SIZE], const uint8_t key[WG_KEY_SIZE], std::initializer_list<Bytes> parts) {
  uint8_t pad[BLAKE2S_BLOCKBYTES] = {};
  uint8_t inner[WG_KEY_SIZE];
  blake2s_state st;
  std::memcpy(pad, key, WG_KEY_SIZE);
  for (uint8_t& b : pad) b ^= kHmacInnerPad;
  Blake2sCheck(blake2s_init(&st, WG_KEY_SIZE));
  Blake2sUpdate(&st, {{pad, sizeof pad}});
  Blake2sUpdate(&st, parts);
  Blake2sCheck(blake2s_final(&st, inner, sizeof inner));
  for (uint8_t& b : pad) b ^= kHmacInnerPad ^ kHmacOuterPad;
  Blake2sCheck(blake2s_init(&st, WG_KEY_SIZE));
  Blake2sUpdate(&st, {{pad, sizeof pad}, {inner, sizeof inner}});
  Blake2sCheck(blake2s_final(&st, out, WG_KEY_SIZE));
  Wipe(pad, sizeof pad);
  Wipe(inner, sizeof inner);
  Wipe(&st, sizeof st);
}

void Mac(uint8_t out[WG_MAC_SIZE], const uint8_t key[WG_KEY_SIZE], const uint8_t* data, size_t size) {
  Blake2sCheck(blake2s(out, data, key, WG_MAC_SIZE, size, WG_KEY_SIZE));
}

// libsodium checks the tag in constant time before it decrypts anything.
bool AeadDecrypt(const uint8_t key[WG_KEY_SIZE], const uint8_t* sealed, size_t size, const uint8_t ad[WG_KEY_SIZE], uint8_t* plain) {
  if (size < WG_AEAD_TAG_SIZE) return false;
  const size_t body = size - WG_AEAD_TAG_SIZE;
  return crypto_aead_chacha20poly1305_ietf_decrypt_detached(plain, nullptr, sealed, body, sealed + body, ad, WG_KEY_SIZE, kHandshakeNonce, key) == 0;
}

bool MacEqual(const uint8_t a[WG_MAC_SIZE], const uint8_t b[WG_MAC_SIZE]) {
  static_assert(WG_MAC_SIZE == 16, "crypto_verify_16 compares 16 bytes");
  return crypto_verify_16(a, b) == 0;
}

bool IsAllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

void Wipe(void* p, size_t n) { sodium_memzero(p, n); }

}  // namespace wgjit
