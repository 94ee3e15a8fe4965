#include "xdp_program.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

extern "C" {
#include "capture_limits.h"
#include "capture_record.h"
}

namespace wgjit {
namespace {

constexpr const char* kProgramName = "xdp_capture";
constexpr const char* kRingMapName = "capture_ring";
constexpr const char* kStatsMapName = "capture_stats";
constexpr const char* kSourcesMapName = "capture_sources";
constexpr const char* kListenPortVar = "listen_port";
constexpr const char* kSourceRateVar = "source_rate";
constexpr const char* kSourceBurstVar = "source_burst";
// Ring sizes must be a power-of-two number of pages (a kernel rule).
constexpr uint32_t kMinRingBytes = 4096;
// Returned by OnRecord to stop a batch; libbpf has already consumed the record.
constexpr int kBatchFull = -ENOSPC;

std::string ErrText(int err) {
  char buf[128];
  return std::string(strerror_r(err < 0 ? -err : err, buf, sizeof buf));
}

// libbpf talks a lot at info/debug level; warnings (verifier logs on a failed
// load among them) are worth seeing on stderr.
int PrintWarnings(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  return vfprintf(stderr, fmt, args);
}

void InstallPrintOnce() {
  static bool installed = false;
  if (!installed) {
    libbpf_set_print(PrintWarnings);
    installed = true;
  }
}

void CheckRange(const char* what, uint32_t value, uint32_t min, uint32_t max) {
  if (value < min || value > max)
    throw BpfError(std::string(what) + " " + std::to_string(value) + " not in " + std::to_string(min) +
                       ".." + std::to_string(max),
                   EINVAL);
}

bpf_map* FindMap(bpf_object* obj, const char* name) {
  bpf_map* map = bpf_object__find_map_by_name(obj, name);
  if (!map) throw BpfError(std::string("find map ") + name, ENOENT);
  return map;
}

int IfIndex(const std::string& ifname, const char* what) {
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) throw BpfError(std::string(what) + " " + ifname, errno);
  return static_cast<int>(idx);
}

}  // namespace

BpfError::BpfError(const std::string& what, int err)
    : std::runtime_error(what + ": " + ErrText(err)), err_(err < 0 ? -err : err) {}

XdpProgram::XdpProgram(const std::string& object_path, const XdpSettings& settings) {
  InstallPrintOnce();
  if (settings.ring_bytes < kMinRingBytes || (settings.ring_bytes & (settings.ring_bytes - 1)) != 0)
    throw BpfError("ring size " + std::to_string(settings.ring_bytes), EINVAL);
  CheckRange("source rate", settings.source_rate, 0, CAPTURE_SOURCE_RATE_MAX);
  CheckRange("source burst", settings.source_burst, CAPTURE_SOURCE_BURST_MIN, CAPTURE_SOURCE_BURST_MAX);
  CheckRange("source table size", settings.source_table_size, CAPTURE_SOURCE_TABLE_MIN,
             CAPTURE_SOURCE_TABLE_MAX);

  obj_ = bpf_object__open_file(object_path.c_str(), nullptr);
  if (!obj_) throw BpfError("open bpf object " + object_path, errno);
  try {
    prog_ = bpf_object__find_program_by_name(obj_, kProgramName);
    if (!prog_) throw BpfError(std::string("find program ") + kProgramName, ENOENT);
    bpf_map* ring = FindMap(obj_, kRingMapName);
    int err = bpf_map__set_max_entries(ring, settings.ring_bytes);
    if (err) throw BpfError("set ring size", err);
    err = bpf_map__set_max_entries(FindMap(obj_, kSourcesMapName), settings.source_table_size);
    if (err) throw BpfError("set source table size", err);
    SetRodata(kListenPortVar, &settings.listen_port, sizeof settings.listen_port);
    SetRodata(kSourceRateVar, &settings.source_rate, sizeof settings.source_rate);
    SetRodata(kSourceBurstVar, &settings.source_burst, sizeof settings.source_burst);

    err = bpf_object__load(obj_);
    if (err) throw BpfError("load bpf object " + object_path, err);
    prog_fd_ = bpf_program__fd(prog_);
    ring_map_fd_ = bpf_map__fd(ring);
    stats_fd_ = bpf_map__fd(FindMap(obj_, kStatsMapName));
  } catch (...) {
    bpf_object__close(obj_);
    obj_ = nullptr;
    throw;
  }
}

XdpProgram::~XdpProgram() {
  DetachAll();
  if (ring_) ring_buffer__free(ring_);
  if (obj_) bpf_object__close(obj_);
}

// Finds the variable in the object's .rodata section through BTF and writes
// its initial value; load then freezes it. The size must be the declared one,
// so a type changed in the program cannot be half written.
void XdpProgram::SetRodata(const char* name, const void* value, size_t size) {
  const btf* btf = bpf_object__btf(obj_);
  if (!btf) throw BpfError("object has no BTF", ENOENT);
  int sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (sec_id < 0) throw BpfError("find .rodata in BTF", sec_id);
  const btf_type* sec = btf__type_by_id(btf, sec_id);
  const btf_var_secinfo* vars = btf_var_secinfos(sec);

  bpf_map* rodata = nullptr;
  for (bpf_map* m = bpf_object__next_map(obj_, nullptr); m; m = bpf_object__next_map(obj_, m)) {
    const char* map_name = bpf_map__name(m);
    size_t len = strlen(map_name);
    if (bpf_map__is_internal(m) && len >= 7 && strcmp(map_name + len - 7, ".rodata") == 0) rodata = m;
  }
  if (!rodata) throw BpfError("find .rodata map", ENOENT);
  size_t rodata_size = 0;
  const void* initial = bpf_map__initial_value(rodata, &rodata_size);
  if (!initial) throw BpfError("read .rodata", ENOENT);
  const auto* bytes = static_cast<const uint8_t*>(initial);
  std::vector<uint8_t> data(bytes, bytes + rodata_size);

  for (int i = 0; i < btf_vlen(sec); i++) {
    const btf_type* var = btf__type_by_id(btf, vars[i].type);
    if (strcmp(btf__name_by_offset(btf, var->name_off), name) != 0) continue;
    if (vars[i].size != size || vars[i].offset + size > rodata_size)
      throw BpfError(std::string(name) + " has an unexpected size", EINVAL);
    memcpy(data.data() + vars[i].offset, value, size);
    int err = bpf_map__set_initial_value(rodata, data.data(), data.size());
    if (err) throw BpfError(std::string("set ") + name, err);
    return;
  }
  throw BpfError(std::string("find ") + name, ENOENT);
}

// A BPF link rather than a netlink attachment: the kernel removes it when
// the process exits, so a crashed daemon or test leaves no program behind,
// and a link never replaces a program someone else attached.
Attachment XdpProgram::Attach(const std::string& ifname, XdpMode mode) {
  if (attachments_.count(ifname)) throw BpfError("attach xdp to " + ifname, EEXIST);
  int ifindex = IfIndex(ifname, "attach xdp to");
  bool native = mode != XdpMode::kGeneric;
  int fd = -1;
  if (native) {
    fd = LinkXdp(ifindex, XDP_FLAGS_DRV_MODE);
    // A driver without native XDP answers EOPNOTSUPP; anything else (EBUSY:
    // another program is there) must not be papered over by a fallback.
    if (fd == -EOPNOTSUPP && mode == XdpMode::kAuto) native = false;
    else if (fd < 0) throw BpfError("attach xdp (native) to " + ifname, fd);
  }
  if (!native) {
    fd = LinkXdp(ifindex, XDP_FLAGS_SKB_MODE);
    if (fd < 0) throw BpfError("attach xdp (generic) to " + ifname, fd);
  }
  Attachment a{ifindex, native, fd};
  attachments_[ifname] = a;
  return a;
}

int XdpProgram::LinkXdp(int ifindex, uint32_t flags) {
  bpf_link_create_opts opts{};
  opts.sz = sizeof(opts);
  opts.flags = flags;
  int fd = bpf_link_create(prog_fd_, ifindex, BPF_XDP, &opts);
  return fd < 0 ? -errno : fd;
}

void XdpProgram::Detach(const std::string& ifname) {
  auto it = attachments_.find(ifname);
  if (it == attachments_.end()) throw BpfError("detach xdp from " + ifname, ENOENT);
  int fd = it->second.link_fd;
  attachments_.erase(it);
  // Detach explicitly (the fd may have been inherited); a vanished interface
  // has already taken the program with it.
  int err = bpf_link_detach(fd);
  int saved = errno;
  close(fd);
  if (err && saved != ENOLINK && saved != ENODEV) throw BpfError("detach xdp from " + ifname, saved);
}

void XdpProgram::DetachAll() noexcept {
  while (!attachments_.empty()) {
    try {
      Detach(attachments_.begin()->first);
    } catch (const BpfError&) {
      // Cleanup path: the interface may be gone or replaced; nothing to undo.
    }
  }
}

std::vector<LinkState> XdpProgram::Links() const {
  std::vector<LinkState> out;
  out.reserve(attachments_.size());
  for (const auto& [ifname, a] : attachments_) {
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    bool live = bpf_obj_get_info_by_fd(a.link_fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_XDP && info.xdp.ifindex != 0;
    out.push_back(LinkState{ifname, a.ifindex, live});
  }
  return out;
}

std::vector<uint64_t> XdpProgram::Stats() const {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus < 0) throw BpfError("count possible cpus", ncpus);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  std::vector<uint64_t> sums(CAPTURE_STAT_MAX, 0);
  for (uint32_t key = 0; key < CAPTURE_STAT_MAX; key++) {
    if (bpf_map_lookup_elem(stats_fd_, &key, per_cpu.data()))
      throw BpfError("read stats", errno);
    for (uint64_t v : per_cpu) sums[key] += v;
  }
  return sums;
}

uint32_t XdpProgram::TestRun(const std::vector<uint8_t>& frame) {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.repeat = 1;
  int err = bpf_prog_test_run_opts(prog_fd_, &opts);
  if (err) throw BpfError("test run", err);
  return opts.retval;
}

void XdpProgram::EnsureRing() {
  if (ring_) return;
  ring_ = ring_buffer__new(ring_map_fd_, OnRecord, this, nullptr);
  if (!ring_) throw BpfError("create ring buffer", errno);
}

int XdpProgram::RingFd() {
  EnsureRing();
  return ring_buffer__epoll_fd(ring_);
}

int XdpProgram::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<XdpProgram*>(ctx);
  (*self->sink_)(static_cast<const uint8_t*>(data), size);
  self->sink_count_++;
  return --self->sink_left_ == 0 ? kBatchFull : 0;
}

size_t XdpProgram::Consume(size_t max_records, const RecordSink& sink) {
  if (max_records == 0) return 0;
  EnsureRing();
  sink_ = &sink;
  sink_left_ = max_records;
  sink_count_ = 0;
  int err = ring_buffer__consume(ring_);
  sink_ = nullptr;
  if (err < 0 && err != kBatchFull) throw BpfError("consume ring buffer", err);
  return sink_count_;
}

}  // namespace wgjit
