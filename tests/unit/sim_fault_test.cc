// The simulator's fault detection: deliberately broken hand-written programs
// (text form) each stop with a diagnostic naming the instruction, layer and
// address.
#include <gtest/gtest.h>

#include <string>

#include "aie/program.h"
#include "aie/target.h"
#include "sim/simulator.h"

namespace wbs::sim {
namespace {

// A 64-byte copy DDR -> mt0 -> c0.0 -> mt0 -> DDR.
const char* const kCopy = R"(wbs-aie-program 3
target paper-2x2 rows 2 cols 2 memtiles 2 ddr 128 memtile 524288 core 65536
symbol in input addr 0 size 64 type u8 scale 1 zp 0 shape 1,1,8,8 scales -
symbol out output addr 64 size 64 type u8 scale 1 zp 0 shape 1,1,8,8 scales -
layer 0 copy Identity macs 0 0
block 1 copy
  LOAD L0 src=ddr sap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 dst=mt0 dap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=-
  LOADFM L0 src=mt0 sap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 dst=c0.0 dap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=-
  WRITEFM L0 src=c0.0 sap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 dst=mt0 dap=256:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=-
  WRITE L0 src=mt0 sap=256:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 dst=ddr dap=64:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=-
end
)";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

// Parses, creates and runs; returns the first error (or OK).
Status RunText(const std::string& text) {
  auto p = aie::Program::FromText(text, "fault.txt");
  if (!p.ok()) return p.status();
  auto sim = Simulator::Create(*p, aie::Target::Paper(2, 2));
  if (!sim.ok()) return sim.status();
  std::vector<uint8_t> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>(i * 3);
  WBS_RETURN_IF_ERROR(sim->SetInput("in", x));
  WBS_RETURN_IF_ERROR(sim->Run());
  auto y = sim->ReadSymbol("out");
  if (!y.ok()) return y.status();
  if (*y != x) return Internal("copy changed the bytes");
  return Status::Ok();
}

void ExpectFault(const std::string& text, const std::vector<std::string>& parts) {
  const Status st = RunText(text);
  ASSERT_FALSE(st.ok());
  for (const std::string& s : parts)
    EXPECT_NE(st.message().find(s), std::string::npos) << st.message() << "\n  missing: " << s;
}

TEST(SimFault, CorrectCopyRuns) { EXPECT_TRUE(RunText(kCopy).ok()) << RunText(kCopy).message(); }

TEST(SimFault, UninitialisedRead) {
  // LOADFM reads mt0 from 128: nothing was written there.
  ExpectFault(Replace(kCopy, "LOADFM L0 src=mt0 sap=0:", "LOADFM L0 src=mt0 sap=128:"),
              {"uninitialised read", "instruction 1", "LOADFM L0 copy", "mt0:0x80"});
}

TEST(SimFault, CoreWriteOutsideBufferBanks) {
  // 49152 = 6 banks of 8 KB: the scratch banks above are the kernel's.
  ExpectFault(Replace(kCopy, "dst=c0.0 dap=0:", "dst=c0.0 dap=49152:"),
              {"write outside buffer", "instruction 1", "c0.0:0xc000"});
}

TEST(SimFault, WriteOutsideMemory) {
  ExpectFault(Replace(kCopy, "dst=mt0 dap=256:", "dst=mt0 dap=524280:"),
              {"out-of-range address", "instruction 2", "WRITEFM L0 copy", "mt0:0x80000"});
}

TEST(SimFault, DdrWriteOutsideOutputSymbol) {
  ExpectFault(
      Replace(kCopy, "dst=ddr dap=64:", "dst=ddr dap=0:"),
      {"write outside buffer", "instruction 3", "WRITE L0 copy", "ddr:0x0", "not in an output"});
}

TEST(SimFault, NegativeAddress) {
  // Start -1 without a bound: a read below address 0.
  ExpectFault(Replace(kCopy, "LOAD L0 src=ddr sap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0",
                      "LOAD L0 src=ddr sap=0:0:1:64,1,1,1:1,0,0,0:-1,0,0,0"),
              {"out-of-range address", "instruction 0", "LOAD L0 copy", "ddr:0x-1"});
}

TEST(SimFault, CoreMemoryLargerThanTarget) {
  ExpectFault(Replace(kCopy, "core 65536", "core 131072"), {"exceeds the core's 65536 bytes"});
}

TEST(SimFault, MemtileLargerThanTarget) {
  ExpectFault(Replace(kCopy, "memtile 524288 core", "memtile 1048576 core"),
              {"exceeds the memtile capacity 524288"});
}

TEST(SimFault, DeadlockNeverReleased) {
  ExpectFault(Replace(kCopy, "dst=c0.0 dap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=-",
                      "dst=c0.0 dap=0:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=c0.0:3:1"),
              {"deadlock", "instruction 1", "LOADFM L0 copy", "c0.0:3"});
}

TEST(SimFault, DeadlockConsumerBeforeProducer) {
  // The consumer (WRITEFM) waits for a release the producer only makes after it.
  std::string t =
      Replace(kCopy, "dst=mt0 dap=256:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=-",
              "dst=mt0 dap=256:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=mt0:5:1");
  t = Replace(t, "dst=ddr dap=64:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=-",
              "dst=ddr dap=64:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=mt0:5:1");
  ExpectFault(t, {"deadlock", "instruction 2", "mt0:5"});
}

TEST(SimFault, LockIdOutOfRange) {
  ExpectFault(
      Replace(kCopy, "dst=ddr dap=64:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=-",
              "dst=ddr dap=64:0:1:64,1,1,1:1,0,0,0:0,0,0,0:0,0,0,0:0,0,0,0:0 acq=- rel=c1.1:16:1"),
      {"lock c1.1:16 out of range", "instruction 3"});
}

TEST(SimFault, CompOnMissingWeights) {
  // A conv whose weight buffer was never loaded.
  const std::string comp =
      "  COMP L0 cores=c0.0 kind=conv in=8x1x8 out=8x1x8 k=1x1 s=1x1 d=1x1 groups=1 inb=0/0 "
      "in2b=0/0 wb=1024/0 wbytes=64 "
      "outb=2048/0 types=u8,u8,u8 zp=0,0,0 clamp=0,255 mult=0,0 shift=0 accum=0 cip=0 img=0x0 "
      "origin=0,0,0 pb=0,0 "
      "pe=0,0 macs=512,512 acq=- rel=-\n  WRITEFM";
  ExpectFault(Replace(kCopy, "  WRITEFM", comp),
              {"uninitialised read", "instruction 2", "COMP L0 copy", "c0.0:0x400"});
}

TEST(SimFault, CompOnCoreOutsideGrid) {
  const std::string comp =
      "  COMP L0 cores=c3.0 kind=add in=8x1x8 out=8x1x8 k=1x1 s=1x1 d=1x1 groups=1 inb=0/0 "
      "in2b=0/0 wb=0/0 wbytes=0 "
      "outb=2048/0 types=u8,u8,u8 zp=0,0,0 clamp=0,255 mult=1,1 shift=0 accum=0 cip=0 img=0x0 "
      "origin=0,0,0 pb=0,0 "
      "pe=0,0 macs=0,0 acq=- rel=-\n  WRITEFM";
  ExpectFault(Replace(kCopy, "  WRITEFM", comp),
              {"c3.0 which is not a core of the grid", "instruction 2"});
}

TEST(SimFault, OutputNeverWritten) {
  // Dropping the final WRITE leaves the output symbol unwritten.
  std::string t = kCopy;
  const size_t a = t.find("  WRITE L0"), b = t.find("end\n");
  t.erase(a, b - a);
  ExpectFault(t, {"symbol out byte 0", "never written"});
}

}  // namespace
}  // namespace wbs::sim
