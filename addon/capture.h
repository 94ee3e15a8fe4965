// JavaScript class Capture: a thin N-API wrapper over XdpProgram that also
// watches the ring buffer on the libuv loop (no thread, no busy loop).
#ifndef WGJIT_CAPTURE_H
#define WGJIT_CAPTURE_H

#include <napi.h>
#include <uv.h>

#include <memory>

#include "xdp_program.h"

namespace wgjit {

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;

 private:
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Health(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  XdpProgram& Program(Napi::Env env);
  Napi::Array Drain(Napi::Env env);
  void OnReadable();
  void StopPolling();
  void Release();

  std::unique_ptr<XdpProgram> program_;
  uv_poll_t* poll_ = nullptr;  // heap: uv_close finishes after we may be gone
  Napi::FunctionReference on_records_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

}  // namespace wgjit

#endif  // WGJIT_CAPTURE_H
