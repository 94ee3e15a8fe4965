// The XDP capture program as user space sees it: open, configure, load,
// attach, read the ring buffer and the stats. Plain C++ over libbpf, no
// Node types, so the N-API layer stays a thin translation.
#ifndef WGJIT_XDP_PROGRAM_H
#define WGJIT_XDP_PROGRAM_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct ring_buffer;

namespace wgjit {

// A libbpf or system call failure, with a message naming the step.
class BpfError : public std::runtime_error {
 public:
  BpfError(const std::string& what, int err);
  int err() const { return err_; }

 private:
  int err_;
};

enum class XdpMode { kAuto, kNative, kGeneric };

// What the loader sets before load. Ranges are in bpf/capture_limits.h;
// the constructor checks them.
struct XdpSettings {
  uint16_t listen_port;
  uint32_t ring_bytes;
  uint32_t source_rate;        // initiations per second per source; 0: no limit
  uint32_t source_burst;       // initiations a source may send at once
  uint32_t source_table_size;  // sources remembered (LRU)
};

struct Attachment {
  int ifindex;
  bool native;
  int link_fd;  // a BPF link: closing it detaches, also when the process dies
};

// An attachment as the kernel sees it now.
struct LinkState {
  std::string ifname;
  int ifindex;
  bool live;  // the BPF link still holds its interface
};

class XdpProgram {
 public:
  // One record, copied by the sink before the callback returns.
  using RecordSink = std::function<void(const uint8_t* data, size_t size)>;

  // Opens, configures and loads the object; throws BpfError.
  XdpProgram(const std::string& object_path, const XdpSettings& settings);
  ~XdpProgram();
  XdpProgram(const XdpProgram&) = delete;
  XdpProgram& operator=(const XdpProgram&) = delete;

  Attachment Attach(const std::string& ifname, XdpMode mode);
  // Detaches from one interface; an interface that vanished counts as detached.
  void Detach(const std::string& ifname);
  void DetachAll() noexcept;

  // One BPF_OBJ_GET_INFO_BY_FD per attachment: a link whose interface went
  // away, or that someone else detached, reports ifindex 0.
  std::vector<LinkState> Links() const;

  // Sum over CPUs of each counter, indexed by enum capture_stat.
  std::vector<uint64_t> Stats() const;

  // BPF_PROG_TEST_RUN with the frame as input; returns the XDP verdict.
  uint32_t TestRun(const std::vector<uint8_t>& frame);

  // The fd that becomes readable when records are waiting.
  int RingFd();
  // Hands up to max_records records to the sink; returns how many.
  size_t Consume(size_t max_records, const RecordSink& sink);

 private:
  static int OnRecord(void* ctx, void* data, size_t size);
  void SetRodata(const char* name, const void* value, size_t size);
  int LinkXdp(int ifindex, uint32_t flags);
  void EnsureRing();

  bpf_object* obj_ = nullptr;
  bpf_program* prog_ = nullptr;
  int prog_fd_ = -1;
  int stats_fd_ = -1;
  int ring_map_fd_ = -1;
  ring_buffer* ring_ = nullptr;
  std::map<std::string, Attachment> attachments_;

  // Valid only during Consume.
  const RecordSink* sink_ = nullptr;
  size_t sink_left_ = 0;
  size_t sink_count_ = 0;
};

}  // namespace wgjit

#endif  // WGJIT_XDP_PROGRAM_H
