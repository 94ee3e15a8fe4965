// The primitives of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s that the responder
// needs: X25519 and ChaCha20-Poly1305 from libsodium, BLAKE2s from libb2
// (the measurements that chose them: docs/decisions.md). Nothing here
// allocates or keeps state, and nothing fails on input from the network:
// a bad DH or tag is a false return.
#ifndef WGJIT_NOISE_CRYPTO_H
#define WGJIT_NOISE_CRYPTO_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

extern "C" {
#include "wg_wire.h"
}

namespace wgjit {

using Key = std::array<uint8_t, WG_KEY_SIZE>;

struct Bytes {
  const void* data;
  size_t size;
};

// Every handshake field is sealed under its own key, so the AEAD counter is 0
// and the nonce (4 zero bytes ‖ 64-bit little-endian counter) is all zero.
inline constexpr uint8_t kHandshakeNonce[12] = {};

// Once before any other call: lets libsodium pick its fastest X25519 for
// this CPU. Throws std::runtime_error if libsodium cannot start.
void NoiseCryptoInit();

// X25519 (RFC 7748: the scalar is clamped, bit 255 of the point ignored).
// False when the result is all zero: the point has low order.
bool X25519(uint8_t shared[WG_KEY_SIZE], const uint8_t scalar[WG_KEY_SIZE], const uint8_t point[WG_KEY_SIZE]);
void X25519Public(uint8_t public_key[WG_KEY_SIZE], const uint8_t scalar[WG_KEY_SIZE]);

// HASH: BLAKE2s-256 over the concatenation of parts.
void Hash(uint8_t out[WG_KEY_SIZE], std::initializer_list<Bytes> parts);
// HMAC-BLAKE2s-256 over the concatenation of parts.
void Hmac(uint8_t out[WG_KEY_SIZE], const uint8_t key[WG_KEY_SIZE], std::initializer_list<Bytes> parts);
// MAC: keyed BLAKE2s-128.
void Mac(uint8_t out[WG_MAC_SIZE], const uint8_t key[WG_KEY_SIZE], const uint8_t* data, size_t size);
// AEAD open with WireGuard's handshake nonce (counter 0) of ciphertext ‖ tag
// (size ≥ tag); plain gets size - tag bytes. False if the tag is wrong.
bool AeadDecrypt(const uint8_t key[WG_KEY_SIZE], const uint8_t* sealed, size_t size, const uint8_t ad[WG_KEY_SIZE], uint8_t* plain);

// Constant-time equality of two MACs.
bool MacEqual(const uint8_t a[WG_MAC_SIZE], const uint8_t b[WG_MAC_SIZE]);
bool IsAllZero(const uint8_t* p, size_t n);
// A wipe the compiler may not drop as a dead store.
void Wipe(void* p, size_t n);

}  // namespace wgjit

#endif  // WGJIT_NOISE_CRYPTO_H
