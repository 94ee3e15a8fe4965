// The module Node loads: only the export table. Logic lives in capture.cc
// (XDP program + ring buffer), raw_send.cc (re-injection),
// noise_responder.cc (handshake verification, on noise_crypto.cc),
// netlink_socket.cc (kernel WireGuard transport). The benchmarks' hook is a
// separate addon (harness/addon/) that the product never loads.
#include <napi.h>

#include <string>

#include "capture.h"
#include "netlink_socket.h"
#include "noise_responder.h"
#include "raw_send.h"

extern "C" {
#include "capture_limits.h"
#include "capture_record.h"
}

namespace {

// rawSend(family: 4 | 6, packet: Buffer, dstAddress: Buffer): void
Napi::Value RawSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "family must be 4 or 6");
  int family = info[0].As<Napi::Number>().Int32Value();
  if (family != 4 && family != 6) throw Napi::TypeError::New(env, "family must be 4 or 6");
  if (!info[1].IsBuffer()) throw Napi::TypeError::New(env, "packet must be a Buffer");
  if (!info[2].IsBuffer()) throw Napi::TypeError::New(env, "dstAddress must be a Buffer");
  auto packet = info[1].As<Napi::Buffer<uint8_t>>();
  auto dst = info[2].As<Napi::Buffer<uint8_t>>();
  try {
    wgjit::RawSend(family, packet.Data(), packet.Length(), dst.Data(), dst.Length());
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

Napi::Array StatNames(Napi::Env env) {
  static const char* const names[] = {
#define CAPTURE_STAT_NAME(name, text) text,
      CAPTURE_STATS(CAPTURE_STAT_NAME)
#undef CAPTURE_STAT_NAME
  };
  Napi::Array out = Napi::Array::New(env, CAPTURE_STAT_MAX);
  for (uint32_t i = 0; i < CAPTURE_STAT_MAX; i++) out.Set(i, Napi::String::New(env, names[i]));
  return out;
}

// The bounds the program was built with, for src/capture/addon.ts to check
// against its own.
Napi::Object CaptureLimits(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("maxVlanTags", CAPTURE_MAX_VLAN_TAGS);
  out.Set("maxIpv6ExtHeaders", CAPTURE_MAX_IPV6_EXT);
  out.Set("defaultSourceRate", CAPTURE_SOURCE_RATE_DEFAULT);
  out.Set("maxSourceRate", CAPTURE_SOURCE_RATE_MAX);
  out.Set("defaultSourceBurst", CAPTURE_SOURCE_BURST_DEFAULT);
  out.Set("minSourceBurst", CAPTURE_SOURCE_BURST_MIN);
  out.Set("maxSourceBurst", CAPTURE_SOURCE_BURST_MAX);
  out.Set("defaultSourceTableSize", CAPTURE_SOURCE_TABLE_DEFAULT);
  out.Set("minSourceTableSize", CAPTURE_SOURCE_TABLE_MIN);
  out.Set("maxSourceTableSize", CAPTURE_SOURCE_TABLE_MAX);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Capture", wgjit::Capture::Define(env));
  exports.Set("NoiseResponder", wgjit::NoiseResponderWrap::Define(env));
  exports.Set("NetlinkSocket", wgjit::NetlinkSocket::Define(env));
  exports.Set("rawSend", Napi::Function::New<RawSend>(env, "rawSend"));
  exports.Set("statNames", StatNames(env));
  exports.Set("recordSize", Napi::Number::New(env, CAPTURE_RECORD_SIZE));
  exports.Set("captureLimits", CaptureLimits(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(wgjit, Init)
