import Foundation
@testable import MgpuAgent
import MgpuCore
import Testing

/// GPU health from recorded `nvidia-smi -q` outputs (driver 535 on A100s; 470 on a V100; 580 on an H100, recorded by
/// scripts/gpu-check on a real one) and kernel XID lines.
@Suite struct NvidiaSMIHealthTests {
    static let gpu0 = "GPU-6d2a7c1e-1b2f-4c53-9a8e-0e1f2a3b4c50"
    static let gpu1 = "GPU-6d2a7c1e-1b2f-4c53-9a8e-0e1f2a3b4c51"

    @Test func healthyGPUsHaveNoFindingsAndTheirBusIDs() throws {
        let report = NvidiaSMI.parseHealth(try fixture("nvidia-smi-q-healthy.txt"))
        #expect(report.unhealthy.isEmpty, "aggregate (lifetime) uncorrectable errors and correctable ones are not a failure: \(report.unhealthy)")
        #expect(report.busIDs == [Self.gpu0: "3b:00", Self.gpu1: "5e:00"])
        #expect(report.deviceErrors.isEmpty)
    }

    @Test func eachFailureNamesItsGPU() throws {
        let remap = NvidiaSMI.parseHealth(try fixture("nvidia-smi-q-remap.txt"))
        #expect(remap.unhealthy == [Self.gpu1: "2 volatile uncorrectable ECC errors (DRAM Uncorrectable); row remapping pending (needs a GPU reset)"])
        let failed = NvidiaSMI.parseHealth(try fixture("nvidia-smi-q-remap-failed.txt"))
        #expect(failed.unhealthy == [Self.gpu0: "row remapping failed"])
        let reset = NvidiaSMI.parseHealth(try fixture("nvidia-smi-q-reset.txt"))
        #expect(reset.unhealthy[Self.gpu0]?.hasPrefix("GPU requires a reset") == true && reset.unhealthy[Self.gpu1] == nil)
        let v100 = NvidiaSMI.parseHealth(try fixture("nvidia-smi-q-v100-dbe.txt"))
        #expect(v100.unhealthy == ["GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0": "1 volatile uncorrectable ECC error; retired pages pending (needs a GPU reset)"])
    }

    /// A real H100 on driver 580: its new fields (SRAM parity and SEC-DED counts, repair flags, unrepairable memory, the
    /// SRAM threshold) all clear, so healthy; each of the Yes/No ones set says why, by itself.
    @Test func anH100OnDriver580() throws {
        let text = try fixture("nvidia-smi-q-h100.txt")
        let uuid = "GPU-109121be-1dac-0bac-6646-684ca0048e23"
        let report = NvidiaSMI.parseHealth(text)
        #expect(report.unhealthy.isEmpty && report.deviceErrors.isEmpty)
        #expect(report.busIDs == [uuid: "00:06"])
        let expected = [
            "Channel Repair Pending": "memory channel repair pending (needs a GPU reset)",
            "TPC Repair Pending": "TPC repair pending (needs a GPU reset)",
            "Unrepairable Memory": "unrepairable memory",
            "SRAM Threshold Exceeded": "SRAM uncorrectable errors past NVIDIA's RMA threshold",
            "Remapping Failure Occurred": "row remapping failed",
        ]
        for (key, finding) in expected {
            let line = try #require(text.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(key + " ") })
            #expect(line.hasSuffix(": No"), "the recording has \(key) clear")
            let flipped = text.replacingOccurrences(of: line, with: line.dropLast(2) + "Yes")
            #expect(NvidiaSMI.parseHealth(flipped).unhealthy == [uuid: finding], "\(key)")
        }
        let recovery = text.replacingOccurrences(of: "    GPU Recovery Action                                : None",
                                                 with: "    GPU Recovery Action                                : Reset")
        #expect(recovery != text)
        #expect(NvidiaSMI.parseHealth(recovery).unhealthy == [uuid: "the driver asks for a recovery action: Reset"])
        // The same keys anywhere but where the driver puts them (a section a later driver adds) say nothing.
        let elsewhere = text.replacingOccurrences(of: "    Temperature\n", with: "    Some Future Section\n        Unrepairable Memory : Yes\n    Temperature\n")
        #expect(elsewhere != text && NvidiaSMI.parseHealth(elsewhere).unhealthy.isEmpty)
        let sram = text.replacingOccurrences(of: "            SRAM Uncorrectable SEC-DED                 : 0\n            DRAM Correctable",
                                             with: "            SRAM Uncorrectable SEC-DED                 : 3\n            DRAM Correctable")
        #expect(sram != text)
        #expect(NvidiaSMI.parseHealth(sram).unhealthy == [uuid: "3 volatile uncorrectable ECC errors (SRAM Uncorrectable SEC-DED)"],
                "the volatile count is a finding, the aggregate (history) is not")
        #expect(NvidiaSMI.seriousXIDs.isSuperset(of: [48, 171, 172]))
    }

    /// Processes choose their own names: a process called "GPU requires reset" on a GPU says nothing of the GPU.
    @Test func processNamesSayNothingOfAGPU() throws {
        let text = try fixture("nvidia-smi-q-healthy.txt").replacingOccurrences(of: "    Temperature\n", with: """
                Processes
                    GPU instance ID                   : N/A
                    Process ID                        : 4242
                        Type                          : C
                        Name                          : GPU is lost [GPU requires reset]
                        Used GPU Memory               : 400 MiB
                Temperature

            """)
        #expect(text.contains("Name                          : GPU is lost"))
        #expect(NvidiaSMI.parseHealth(text).unhealthy.isEmpty)
    }

    @Test func aLostGPUIsNamedByItsBus() throws {
        let lost = NvidiaSMI.parseHealth(try fixture("nvidia-smi-q-lost.txt"))
        #expect(lost.deviceErrors.map(\.bus) == ["5e:00"])
        #expect(lost.deviceErrors.first?.message.hasPrefix("GPU is lost.") == true)
        #expect(lost.busIDs == [Self.gpu0: "3b:00"] && lost.unhealthy.isEmpty, "the GPU it still reaches is fine")
    }

    @Test func xidLinesAreRead() throws {
        let lines = try fixture("dmesg-xid.txt").split(separator: "\n")
        let xids = lines.compactMap { NvidiaSMI.parseXID($0) }
        #expect(xids.map(\.bus) == ["3b:00", "5e:00"] && xids.map(\.xid) == [13, 79])
        #expect(xids[1].text == "XID 79: GPU has fallen off the bus.")
        #expect(!NvidiaSMI.seriousXIDs.contains(13) && NvidiaSMI.seriousXIDs.contains(79), "an application's fault is not the GPU's")
        #expect(NvidiaSMI.parseXID("NVRM: Xid (PCI:0000:3b:00): x") == nil && NvidiaSMI.parseXID("no xid here") == nil)
        // What a user can get the kernel to print: a segfault report of a process named "NVRM: Xid (" (or
        // "NVRM: Xid (PCI:"), run from a file named after an XID. The kernel puts "[PID]" after the name: not an XID.
        #expect(NvidiaSMI.parseXID("[ 9.1] NVRM: Xid ([4242]: segfault at 0 ip 0 sp 0 error 4 in :3b:00): 79, GPU has fallen off the bus[400000+1000]") == nil)
        #expect(NvidiaSMI.parseXID("[ 9.1] NVRM: Xid (PCI:[4242]: segfault at 0 in :0000:3b:00): 79, x") == nil)
        #expect(NvidiaSMI.parseXID("[ 9.1] python[77]: NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.") == nil, "not at the start")
    }

    /// The collector: a GPU the driver reports failing is unhealthy by our index, a lost GPU by the bus it had, and only
    /// XIDs newer than the agent count.
    @Test func theCollectorMapsFindingsToItsGPUs() async throws {
        let dir = NSTemporaryDirectory() + "mgpu-health-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path
        // A stand-in nvidia-smi: -q prints the file `q` names; other queries print nothing.
        try "#!/bin/sh\n[ \"$1\" = -q ] && cat \"$(cat \(dir)/q)\"\ntrue\n".write(toFile: dir + "/nvidia-smi", atomically: true, encoding: .utf8)
        chmod(dir + "/nvidia-smi", 0o755)
        func use(_ name: String) throws { try (fixtures + "/" + name).write(toFile: dir + "/q", atomically: true, encoding: .utf8) }
        let gpus = [GPU(index: 0, uuid: Self.gpu0, name: "A100", memoryMB: 81920), GPU(index: 1, uuid: Self.gpu1, name: "A100", memoryMB: 81920)]
        // The kernel log: an application's XID and a serious one from before the agent started, then a new serious one.
        let xids = try fixture("dmesg-xid.txt").split(separator: "\n")
        try ([xids[0], xids[2], xids[3]].joined(separator: "\n") + "\n").write(toFile: dir + "/kmsg", atomically: true, encoding: .utf8)
        let collector = TelemetryCollector(gpus: gpus, nvidiaSMI: dir + "/nvidia-smi", avoidForeign: true, healthInterval: 0,
                                           kernelLog: ["/bin/cat", dir + "/kmsg"])
        try use("nvidia-smi-q-healthy.txt")
        #expect(await collector.sample(holders: [], now: 1).gpus.allSatisfy { $0.unhealthy == nil }, "XIDs older than the agent do not count")
        try use("nvidia-smi-q-remap.txt")
        let remap = await collector.sample(holders: [], now: 2)
        #expect(remap.gpus[0].unhealthy == nil && remap.gpus[1].unhealthy?.contains("row remapping pending") == true)
        #expect(remap.unavailableGPUs == [1])
        try use("nvidia-smi-q-lost.txt")
        let lost = await collector.sample(holders: [], now: 3)
        #expect(lost.gpus[1].unhealthy?.hasPrefix("GPU is lost.") == true && lost.gpus[0].unhealthy == nil, "\(lost.gpus.map(\.unhealthy))")
        try use("nvidia-smi-q-healthy.txt")
        #expect(await collector.sample(holders: [], now: 4).unhealthyGPUs == [], "a GPU that is fine again is healthy again")
        // A new serious XID on GPU 0's bus: unhealthy, and it stays so (until the agent restarts after a reset).
        try (xids.joined(separator: "\n") + "\n[86200.1] NVRM: Xid (PCI:0000:3b:00): 48, pid=1, name=x, An uncorrectable double bit error\n")
            .write(toFile: dir + "/kmsg", atomically: true, encoding: .utf8)
        let xid = await collector.sample(holders: [], now: 5)
        #expect(xid.gpus[0].unhealthy == "XID 48: An uncorrectable double bit error" && xid.gpus[1].unhealthy == nil, "\(xid.gpus.map(\.unhealthy))")
        #expect(await collector.sample(holders: [], now: 6).unhealthyGPUs == [0])
    }

    /// `--health-check`: a non-zero exit's first line is the reason; a zero exit clears it; an unset program, nothing.
    @Test func theSiteHealthProgramsFirstLineIsTheReason() async throws {
        let dir = NSTemporaryDirectory() + "mgpu-health-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "#!/bin/sh\nif [ -e \(dir)/bad ]; then echo; echo '  /scratch is full  ' >&2; echo more; exit 3; fi\nexit 0\n"
            .write(toFile: dir + "/check", atomically: true, encoding: .utf8)
        chmod(dir + "/check", 0o755)
        let collector = TelemetryCollector(gpus: [], nvidiaSMI: nil, avoidForeign: true, healthProgram: dir + "/check", healthInterval: 0)
        #expect(await collector.sample(holders: [], now: 1).healthCheck == nil)
        FileManager.default.createFile(atPath: dir + "/bad", contents: nil)
        #expect(await collector.sample(holders: [], now: 2).healthCheck == "/scratch is full")
        try FileManager.default.removeItem(atPath: dir + "/bad")
        #expect(await collector.sample(holders: [], now: 3).healthCheck == nil)
        let silent = TelemetryCollector(gpus: [], nvidiaSMI: nil, avoidForeign: true, healthProgram: "/bin/false", healthInterval: 0)
        #expect(await silent.sample(holders: [], now: 1).healthCheck == "/bin/false exited with status 1")
    }
}
