#include "capture.h"

#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "capture_record.h"
}

namespace wgjit {
namespace {

// Records delivered per wakeup at most: bounds the work done in one turn of
// the event loop. What is left stays in the ring (the bounded queue) and
// the fd stays readable, so the next turn picks it up.
constexpr size_t kMaxRecordsPerWakeup = 1024;

[[noreturn]] void ThrowError(Napi::Env env, const std::string& message) {
  throw Napi::Error::New(env, message);
}

[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) ThrowTypeError(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

uint32_t UintArg(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t max) {
  if (!info[i].IsNumber()) ThrowTypeError(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= max) || v != static_cast<double>(static_cast<uint32_t>(v)))
    ThrowTypeError(info.Env(), std::string(name) + " out of range");
  return static_cast<uint32_t>(v);
}

}  // namespace

Napi::Function Capture::Define(Napi::Env env) {
  return DefineClass(env, "Capture",
                     {
                         InstanceMethod<&Capture::Attach>("attach"),
                         InstanceMethod<&Capture::Detach>("detach"),
                         InstanceMethod<&Capture::Start>("start"),
                         InstanceMethod<&Capture::Stats>("stats"),
                         InstanceMethod<&Capture::Health>("health"),
                         InstanceMethod<&Capture::TestRun>("testRun"),
                         InstanceMethod<&Capture::Close>("close"),
                     });
}

// new Capture(objectPath, listenPort, ringBytes, sourceRate, sourceBurst,
//             sourceTableSize); XdpProgram checks the ranges.
Capture::Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0, "objectPath");
  XdpSettings settings{};
  settings.listen_port = static_cast<uint16_t>(UintArg(info, 1, "listenPort", 65535));
  settings.ring_bytes = UintArg(info, 2, "ringBytes", 1u << 30);
  settings.source_rate = UintArg(info, 3, "sourceRate", UINT32_MAX);
  settings.source_burst = UintArg(info, 4, "sourceBurst", UINT32_MAX);
  settings.source_table_size = UintArg(info, 5, "sourceTableSize", UINT32_MAX);
  try {
    program_ = std::make_unique<XdpProgram>(path, settings);
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
}

Capture::~Capture() { Release(); }

XdpProgram& Capture::Program(Napi::Env env) {
  if (!program_) ThrowError(env, "capture is closed");
  return *program_;
}

// attach(ifname, mode) -> {ifindex, mode}
Napi::Value Capture::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = StringArg(info, 0, "ifname");
  std::string mode_text = StringArg(info, 1, "mode");
  XdpMode mode;
  if (mode_text == "auto") mode = XdpMode::kAuto;
  else if (mode_text == "native") mode = XdpMode::kNative;
  else if (mode_text == "generic") mode = XdpMode::kGeneric;
  else ThrowTypeError(env, "mode must be auto, native or generic");
  Attachment a{};
  try {
    a = Program(env).Attach(ifname, mode);
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("ifindex", Napi::Number::New(env, a.ifindex));
  result.Set("mode", Napi::String::New(env, a.native ? "native" : "generic"));
  return result;
}

Napi::Value Capture::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = StringArg(info, 0, "ifname");
  try {
    Program(env).Detach(ifname);
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
  return env.Undefined();
}

// Copies up to kMaxRecordsPerWakeup records out of the ring. Buffers are made
// after the ring walk so nothing can throw through libbpf's C frames.
Napi::Array Capture::Drain(Napi::Env env) {
  std::vector<std::vector<uint8_t>> records;
  try {
    Program(env).Consume(kMaxRecordsPerWakeup, [&records](const uint8_t* data, size_t size) {
      records.emplace_back(data, data + size);
    });
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
  Napi::Array out = Napi::Array::New(env, records.size());
  for (size_t i = 0; i < records.size(); i++)
    out.Set(i, Napi::Buffer<uint8_t>::Copy(env, records[i].data(), records[i].size()));
  return out;
}

// start(callback: (records: Buffer[]) => void)
Napi::Value Capture::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowTypeError(env, "callback must be a function");
  if (poll_) ThrowError(env, "capture already started");
  int fd;
  try {
    fd = Program(env).RingFd();
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowError(env, "no event loop");

  auto* poll = new uv_poll_t;
  int err = uv_poll_init(loop, poll, fd);
  if (err) {
    delete poll;
    ThrowError(env, std::string("watch ring buffer: ") + uv_strerror(err));
  }
  poll->data = this;
  err = uv_poll_start(poll, UV_READABLE, [](uv_poll_t* handle, int status, int) {
    auto* self = static_cast<Capture*>(handle->data);
    if (status == 0 && self) self->OnReadable();
  });
  if (err) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    ThrowError(env, std::string("watch ring buffer: ") + uv_strerror(err));
  }
  poll_ = poll;
  on_records_ = Napi::Persistent(info[0].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "wgjit:capture");
  // A running capture must not be collected while its callback is live.
  Ref();
  return env.Undefined();
}

void Capture::OnReadable() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    Napi::Array records = Drain(env);
    if (records.Length() == 0 || on_records_.IsEmpty()) return;
    on_records_.MakeCallback(Value(), {records}, *async_context_);
  } catch (const Napi::Error& e) {
    // No JS frame to throw into: make it the process's uncaught exception.
    napi_fatal_exception(env, e.Value());
  }
}

// stats() -> bigint[] indexed like enum capture_stat
Napi::Value Capture::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint64_t> sums;
  try {
    sums = Program(env).Stats();
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
  Napi::Array out = Napi::Array::New(env, sums.size());
  for (size_t i = 0; i < sums.size(); i++) out.Set(i, Napi::BigInt::New(env, sums[i]));
  return out;
}

// health() -> {polling, links: [{ifname, ifindex, live}]}: whether the ring
// buffer is watched, and whether each attachment still holds its interface.
Napi::Value Capture::Health(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<LinkState> links = Program(env).Links();
  Napi::Array list = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) {
    Napi::Object link = Napi::Object::New(env);
    link.Set("ifname", Napi::String::New(env, links[i].ifname));
    link.Set("ifindex", Napi::Number::New(env, links[i].ifindex));
    link.Set("live", Napi::Boolean::New(env, links[i].live));
    list.Set(i, link);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("polling", Napi::Boolean::New(env, poll_ != nullptr));
  result.Set("links", list);
  return result;
}

// testRun(frame: Buffer, drain = true) -> {retval, records}
// drain = false leaves the records in the ring (to test a full ring).
Napi::Value Capture::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) ThrowTypeError(env, "frame must be a Buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> frame(buf.Data(), buf.Data() + buf.Length());
  uint32_t retval = 0;
  try {
    retval = Program(env).TestRun(frame);
  } catch (const BpfError& e) {
    ThrowError(env, e.what());
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("retval", Napi::Number::New(env, retval));
  bool drain = info.Length() < 2 || !info[1].IsBoolean() || info[1].As<Napi::Boolean>().Value();
  result.Set("records", drain ? Drain(env) : Napi::Array::New(env, 0));
  return result;
}

void Capture::StopPolling() {
  if (!poll_) return;
  poll_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(poll_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
  on_records_.Reset();
  async_context_.reset();
}

// Stops the watcher before the ring (and its fd) is freed, then detaches
// and closes the object. Safe to call more than once.
void Capture::Release() {
  StopPolling();
  program_.reset();
}

Napi::Value Capture::Close(const Napi::CallbackInfo& info) {
  bool was_started = poll_ != nullptr;
  Release();
  if (was_started) Unref();
  return info.Env().Undefined();
}

}  // namespace wgjit
