// A netlink socket whose request/reply exchanges run on libuv's thread pool,
// so a large set or dump never blocks the event loop. Only transport lives
// here: messages are built and parsed in TypeScript
// (src/install/netlink-protocol.ts); this file reads just enough of each
// reply's headers to know when the exchange is complete.
#ifndef WGJIT_NETLINK_SOCKET_H
#define WGJIT_NETLINK_SOCKET_H

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace wgjit {

// Plain socket: open, bind, exchange. Errors are errno values (0 = ok).
class NetlinkTransport {
 public:
  // A reply larger than this in total is refused (EMSGSIZE): a dump of the
  // kernel's most peers per interface (2^20) with a few allowed IPs each
  // stays far below it.
  static constexpr size_t kMaxReplyBytes = size_t(1) << 30;
  // The kernel sizes each dump part to the reader's buffer, up to 32 KiB.
  static constexpr size_t kReceiveBufferBytes = 64 * 1024;

  // protocol: NETLINK_GENERIC etc.; timeout_ms bounds each wait for a reply.
  int Open(int protocol, unsigned timeout_ms);
  // Sends one request buffer (whose messages all carry nlmsg_seq `seq`) and
  // collects every reply datagram carrying that sequence number until
  // `terminals` NLMSG_DONE or NLMSG_ERROR messages have come: one for a
  // single request or a dump, N for N messages each asking for an ack (the
  // kernel answers them in order, one ack or error each). Datagrams of other
  // sequence numbers (late replies to a request that timed out) are dropped.
  int Exchange(const std::vector<uint8_t>& request, uint32_t seq, uint32_t terminals, std::vector<std::vector<uint8_t>>* replies);
  void Close();
  bool IsOpen() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// class NetlinkSocket(protocol: number, timeoutMs: number)
//   exchange(request: Buffer, seq: number, terminals = 1): Promise<Buffer[]>
//     rejects with an Error whose `code` is the errno name (ENODEV, EPERM, …)
//   close(): void   (also after an exchange in flight: it closes when that ends)
class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NetlinkSocket(const Napi::CallbackInfo& info);
  ~NetlinkSocket() override;

 private:
  friend class ExchangeWorker;
  Napi::Value Exchange(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void Finished();

  NetlinkTransport transport_;
  bool busy_ = false;
  bool close_requested_ = false;
};

}  // namespace wgjit

#endif  // WGJIT_NETLINK_SOCKET_H
