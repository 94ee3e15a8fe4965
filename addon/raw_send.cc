#include "raw_send.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <stdexcept>

namespace wgjit {
namespace {

std::string ErrText(int err) {
  char buf[128];
  return std::string(strerror_r(err, buf, sizeof buf));
}

// One socket per family, opened on first use and kept for the process:
// replays are frequent and the socket holds no per-packet state.
// IPPROTO_RAW implies "header included" for both families on Linux.
int SocketFor(int family) {
  static int fds[2] = {-1, -1};
  int& fd = fds[family == 4 ? 0 : 1];
  if (fd < 0) {
    fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) throw std::runtime_error("raw socket (IPv" + std::to_string(family) + "): " + ErrText(errno));
  }
  return fd;
}

}  // namespace

void RawSend(int family, const uint8_t* packet, size_t size, const std::string& dst) {
  sockaddr_storage ss{};
  socklen_t len;
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, dst.c_str(), &sin->sin_addr) != 1)
      throw std::runtime_error("raw send: bad IPv4 address " + dst);
    len = sizeof(*sin);
  } else if (family == 6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, dst.c_str(), &sin6->sin6_addr) != 1)
      throw std::runtime_error("raw send: bad IPv6 address " + dst);
    len = sizeof(*sin6);
  } else {
    throw std::runtime_error("raw send: family must be 4 or 6");
  }
  int fd = SocketFor(family);
  ssize_t sent = sendto(fd, packet, size, 0, reinterpret_cast<sockaddr*>(&ss), len);
  if (sent < 0) throw std::runtime_error("raw send to " + dst + ": " + ErrText(errno));
  if (static_cast<size_t>(sent) != size) throw std::runtime_error("raw send to " + dst + ": short write");
}

}  // namespace wgjit
