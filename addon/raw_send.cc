#include "raw_send.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

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

// The destination as a person reads it, for error messages only.
std::string AddressText(int family, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, buf, sizeof buf) == nullptr) return "?";
  return std::string(buf);
}

}  // namespace

void RawSend(int family, const uint8_t* packet, size_t size, const uint8_t* dst, size_t dst_size) {
  sockaddr_storage ss{};
  socklen_t len;
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    if (dst_size != sizeof(sin->sin_addr)) throw std::runtime_error("raw send: an IPv4 address is 4 bytes");
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, dst, dst_size);
    len = sizeof(*sin);
  } else if (family == 6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (dst_size != sizeof(sin6->sin6_addr)) throw std::runtime_error("raw send: an IPv6 address is 16 bytes");
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, dst, dst_size);
    len = sizeof(*sin6);
  } else {
    throw std::runtime_error("raw send: family must be 4 or 6");
  }
  int fd = SocketFor(family);
  ssize_t sent = sendto(fd, packet, size, 0, reinterpret_cast<sockaddr*>(&ss), len);
  if (sent < 0) throw std::runtime_error("raw send to " + AddressText(family, dst) + ": " + ErrText(errno));
  if (static_cast<size_t>(sent) != size) throw std::runtime_error("raw send to " + AddressText(family, dst) + ": short write");
}

}  // namespace wgjit
