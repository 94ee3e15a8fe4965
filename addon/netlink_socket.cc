#include "netlink_socket.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace wgjit {

/* ---------- transport ---------- */

int NetlinkTransport::Open(int protocol, unsigned timeout_ms) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) return errno;
  const int on = 1;
  // Error replies carry only the failed request's header, not its (possibly
  // 64 KiB) body, plus the kernel's text message when it has one.
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
  // Route dumps honour the table, protocol and interface in the request
  // only under strict checking: without it the kernel sends every route of
  // every table (a full BGP table is a million). Older kernels refuse the
  // option and dump everything; the reader filters again.
  if (protocol == NETLINK_ROUTE) setsockopt(fd_, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof on);
  timeval tv{};
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 || setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
      bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    const int err = errno;
    Close();
    return err;
  }
  return 0;
}

int NetlinkTransport::Exchange(const std::vector<uint8_t>& request, uint32_t seq, uint32_t terminals, std::vector<std::vector<uint8_t>>* replies) {
  if (fd_ < 0) return EBADF;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd_, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return errno;
  if (size_t(sent) != request.size()) return EMSGSIZE;

  std::vector<uint8_t> buf(kReceiveBufferBytes);
  size_t total = 0;
  uint32_t seen = 0;
  for (;;) {
    ssize_t n;
    do {
      n = recv(fd_, buf.data(), buf.size(), MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
    if (size_t(n) > buf.size()) return EMSGSIZE;  // truncated: cannot happen with this buffer

    bool ours = false;
    for (size_t off = 0; off + NLMSG_HDRLEN <= size_t(n);) {
      nlmsghdr hdr;
      memcpy(&hdr, buf.data() + off, sizeof hdr);
      if (hdr.nlmsg_len < NLMSG_HDRLEN || off + hdr.nlmsg_len > size_t(n)) return EPROTO;
      if (hdr.nlmsg_seq == seq) {
        ours = true;
        if (hdr.nlmsg_type == NLMSG_DONE || hdr.nlmsg_type == NLMSG_ERROR) seen++;
      }
      off += NLMSG_ALIGN(hdr.nlmsg_len);
    }
    if (!ours) continue;
    total += size_t(n);
    if (total > kMaxReplyBytes) return EMSGSIZE;
    replies->emplace_back(buf.begin(), buf.begin() + n);
    if (seen >= terminals) return 0;
  }
}

void NetlinkTransport::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

/* ---------- N-API ---------- */

namespace {

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err) {
  char text[128];
  const char* name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror_r(err, text, sizeof text));
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

}  // namespace

class ExchangeWorker : public Napi::AsyncWorker {
 public:
  ExchangeWorker(Napi::Env env, NetlinkSocket* owner, std::vector<uint8_t> request, uint32_t seq, uint32_t terminals)
      : Napi::AsyncWorker(env),
        owner_(owner),
        deferred_(Napi::Promise::Deferred::New(env)),
        request_(std::move(request)),
        seq_(seq),
        terminals_(terminals) {
    owner_->Ref();  // the JavaScript object outlives the exchange
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override { err_ = owner_->transport_.Exchange(request_, seq_, terminals_, &replies_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(ErrnoError(env, "netlink exchange", err_).Value());
    } else {
      Napi::Array out = Napi::Array::New(env, replies_.size());
      for (size_t i = 0; i < replies_.size(); i++) out.Set(i, Napi::Buffer<uint8_t>::Copy(env, replies_[i].data(), replies_[i].size()));
      deferred_.Resolve(out);
    }
    Done();
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(e.Value());
    Done();
  }

 private:
  void Done() {
    owner_->Finished();
    owner_->Unref();
  }

  NetlinkSocket* owner_;
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> request_;
  uint32_t seq_;
  uint32_t terminals_;
  int err_ = 0;
  std::vector<std::vector<uint8_t>> replies_;
};

Napi::Function NetlinkSocket::Define(Napi::Env env) {
  return DefineClass(env, "NetlinkSocket",
                     {InstanceMethod<&NetlinkSocket::Exchange>("exchange"), InstanceMethod<&NetlinkSocket::Close>("close")});
}

NetlinkSocket::NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "NetlinkSocket(protocol: number, timeoutMs: number)");
  const int err = transport_.Open(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value());
  if (err != 0) throw ErrnoError(env, "netlink socket", err);
}

NetlinkSocket::~NetlinkSocket() { transport_.Close(); }

Napi::Value NetlinkSocket::Exchange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool counted = info[2].IsUndefined() || info[2].IsNumber();
  if (!info[0].IsBuffer() || !info[1].IsNumber() || !counted) {
    throw Napi::TypeError::New(env, "exchange(request: Buffer, seq: number, terminals?: number)");
  }
  const uint32_t terminals = info[2].IsUndefined() ? 1 : info[2].As<Napi::Number>().Uint32Value();
  if (terminals == 0) throw Napi::RangeError::New(env, "exchange: terminals must be at least 1");
  if (busy_) throw Napi::Error::New(env, "netlink exchange already in progress on this socket");
  if (close_requested_ || !transport_.IsOpen()) throw ErrnoError(env, "netlink exchange", EBADF);
  auto request = info[0].As<Napi::Buffer<uint8_t>>();
  auto* worker = new ExchangeWorker(env, this, std::vector<uint8_t>(request.Data(), request.Data() + request.Length()),
                                    info[1].As<Napi::Number>().Uint32Value(), terminals);
  busy_ = true;
  worker->Queue();
  return worker->Promise();
}

Napi::Value NetlinkSocket::Close(const Napi::CallbackInfo& info) {
  close_requested_ = true;
  if (!busy_) transport_.Close();
  return info.Env().Undefined();
}

void NetlinkSocket::Finished() {
  busy_ = false;
  if (close_requested_) transport_.Close();
}

}  // namespace wgjit
